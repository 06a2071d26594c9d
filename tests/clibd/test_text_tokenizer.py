from clibd.taxonomy import taxonomy_text
from clibd.text_tokenizer import TextTokenizer


def test_taxonomy_text_marks_missing_ranks():
    text = taxonomy_text({"order": "Diptera", "family": None, "genus": "  ", "species": "Aedes vexans"})
    assert text == "Diptera not_classified not_classified Aedes vexans"


def test_fitted_wordpiece_pads_truncates_and_spells_unseen_names():
    tok = TextTokenizer.fit(["Diptera Culicidae Aedes Aedes vexans"], vocab_size=300, max_tokens=12)
    batch = tok(["Diptera Culicidae Aedes Aedes vexans", "Lepidoptera Nymphalidae Danaus Danaus plexippus"])
    assert batch["input_ids"].shape == (2, 12)
    assert batch["attention_mask"][1].sum() == 12  # long unseen names are truncated, not dropped
    unk = tok.tokenizer.token_to_id("[UNK]")
    assert unk not in batch["input_ids"][1].tolist()  # unseen words are split into known pieces


def test_json_roundtrip_gives_identical_ids():
    tok = TextTokenizer.fit(["Coleoptera Carabidae Abax Abax parallelepipedus"], 200, 20)
    again = TextTokenizer.from_json(tok.to_json(), 20)
    text = ["Coleoptera Carabidae Carabus Carabus nemoralis"]
    assert tok(text)["input_ids"].tolist() == again(text)["input_ids"].tolist()
