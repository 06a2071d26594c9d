import pytest

from clibd.config import DnaTokenizerConfig
from clibd.dna_tokenizer import MASK_ID, UNK_ID, InvalidSequenceError, KmerTokenizer, identifiable_barcode, \
    normalize_sequence


def test_default_is_barcodebert_vocabulary_and_length():
    tok = KmerTokenizer()
    assert tok.vocab_size == 1027
    assert tok.num_tokens == 132
    ids, n_real = tok.tokenize("ACGTA" * 10)
    assert len(ids) == 132 and n_real == 10
    assert ids[10:] == [UNK_ID] * 122  # N-padding k-mers are <UNK>


def test_case_rna_and_gaps_are_handled_deliberately():
    tok = KmerTokenizer()
    ref, _ = tok.tokenize("ACGTTACGTT")
    assert tok.tokenize("acgttacgtt")[0] == ref
    assert tok.tokenize("ACGUUACGUU")[0] == ref  # RNA U read as T
    assert tok.tokenize("--ACG-TTACGTT--\n")[0] == ref  # alignment gaps and whitespace dropped


def test_iupac_codes_make_unknown_kmers_and_other_letters_are_rejected():
    tok = KmerTokenizer()
    ids, _ = tok.tokenize("ACGTRACGTT")
    assert ids[0] == UNK_ID and ids[1] != UNK_ID
    for bad in ("ACGTXACGT", "ACGT1", "ACGT*"):
        with pytest.raises(InvalidSequenceError, match="not an IUPAC"):
            tok.tokenize(bad)
    with pytest.raises(InvalidSequenceError, match="empty"):
        normalize_sequence("--- \n")


def test_overlapping_stride_and_truncation():
    tok = KmerTokenizer(DnaTokenizerConfig(k=4, stride=1, max_len=8))
    assert tok.vocab_size == 3 + 4 ** 4
    assert tok.num_tokens == 5
    ids, n_real = tok.tokenize("ACGTACGTACGT")  # truncated to 8 nt
    assert n_real == 5 and UNK_ID not in ids
    assert ids[0] == ids[4]  # ACGT at positions 0 and 4


def test_batch_mask_and_prepended_token():
    tok = KmerTokenizer()
    batch = tok(["ACGTA" * 3, "ACGTA" * 20], prepend_mask_token=True)
    assert batch["input_ids"].shape == (2, 133)
    assert (batch["input_ids"][:, 0] == MASK_ID).all()
    assert batch["attention_mask"].sum(dim=1).tolist() == [4, 21]


@pytest.mark.parametrize("given,words", [
    ("ACGU" * 40, "RNA"), ("ACGT" * 10, "has 40 nucleotides"), ("ACGT" * 1000, "at most 3000"),
    ("N" * 650, "only 0 determined bases"), ("ACGTNNNNNN" * 15, "has 150 nucleotides but only 60"),
    ("ACGT" * 40 + "J", "position 161")])
def test_identifiable_barcode_says_what_is_wrong(given, words):
    with pytest.raises(InvalidSequenceError, match=words):
        identifiable_barcode(given)


def test_identifiable_barcode_keeps_ambiguity_codes_among_enough_bases():
    assert identifiable_barcode("acgt-" * 30 + "NNRY") == "ACGT" * 30 + "NNRY"


def test_a_sequence_pasted_from_a_genbank_record_reads_as_its_bases():
    bases = "AACTTTATATTTTATTTTTGGAATTTGAGCAGGAATAGTAGGAACTTCTTTAAGATTATT"
    record = ("ORIGIN      \n        1 aactttatat tttatttttg gaatttgagc aggaatagta ggaacttctt\n"
              "       51 taagattatt\n//\n")
    assert normalize_sequence(record) == bases
    assert normalize_sequence(record.replace("ORIGIN      \n", "").replace("//\n", "")) == bases
    for loose in ("1ACGTACGT", "ACGT 12 ACGT", "  12 ACGT 3 ACGT"):  # digits anywhere else stay an error
        with pytest.raises(InvalidSequenceError, match="character '1' at position .* GenBank"):
            normalize_sequence(loose)
