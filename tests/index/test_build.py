"""`clibd index build` from a checkpoint and the synthetic fixture: resumable embedding, a loadable snapshot."""
import numpy as np
import pytest

from clibd import create_model, save_checkpoint
from clibd.cli import main
from clibd.readers import read_records
from clibd.index.build import embed_sharded
from clibd.index.searcher import Searcher


def test_sharded_embedding_resumes_from_finished_shards(tmp_path):
    calls = []

    def encode(chunk):
        calls.append(len(chunk))
        if len(calls) == 2 and not (tmp_path / "crashed").exists():
            (tmp_path / "crashed").touch()
            raise RuntimeError("crash in the second shard")
        return np.full((len(chunk), 2), float(chunk[0]), np.float32)

    items = list(range(25))
    try:
        embed_sharded(encode, items, tmp_path / "s", shard_size=10)
    except RuntimeError:
        pass
    calls.clear()
    out = embed_sharded(encode, items, tmp_path / "s", shard_size=10)
    assert calls == [10, 5]  # the first shard was not recomputed
    assert out.shape == (25, 2) and out[0, 0] == 0 and out[10, 0] == 10 and out[20, 0] == 20


def test_index_build_cli_writes_a_snapshot_the_searcher_serves(synth_dir, tmp_path):
    ckpt = save_checkpoint(create_model("clibd-tiny"), tmp_path / "m.pt")
    records = synth_dir / "partition" / "records.tsv"
    root = tmp_path / "index"
    assert main(["index", "build", "--checkpoint", str(ckpt), "--records", str(records), "--out", str(root),
                 "--splits", "key_seen,key_unseen"]) == 0
    from clibd.checkpoint import checkpoint_hash
    s = Searcher.open(root, checkpoint_hash(ckpt))
    keys = [r for r in read_records(records) if r.split in ("key_seen", "key_unseen")]
    assert s.size("dna") == len(keys) and s.size("image") == len(keys)
    assert s.size("text") == len({r.species for r in keys})
    vec = s.snapshot.vectors["dna"][:1]
    assert s.search(vec, 1, "dna")[0][0].record.id == s.snapshot.records["dna"][0].id
    assert s.snapshot.manifest["factories"] == {"image": "Flat", "dna": "Flat", "text": "Flat"}


def test_index_compact_cli_adds_embeds_and_removes(synth_dir, tmp_path):
    from clibd.checkpoint import checkpoint_hash
    from clibd.records import write_records

    ckpt = save_checkpoint(create_model("clibd-tiny"), tmp_path / "m.pt")
    records = read_records(synth_dir / "partition" / "records.tsv")
    keys = [r for r in records if r.split == "key_seen"]
    new = [r for r in records if r.split == "key_unseen"][:5]
    write_records(keys, tmp_path / "keys.tsv")
    write_records(new, tmp_path / "new.tsv")
    (tmp_path / "gone.txt").write_text(keys[0].id + "\n")
    root = tmp_path / "index"
    assert main(["index", "build", "--checkpoint", str(ckpt), "--records", str(tmp_path / "keys.tsv"),
                 "--out", str(root)]) == 0
    before = Searcher.open(root).snapshot
    assert main(["index", "compact", "--root", str(root), "--checkpoint", str(ckpt), "--add",
                 str(tmp_path / "new.tsv"), "--remove", str(tmp_path / "gone.txt")]) == 0
    s = Searcher.open(root, checkpoint_hash(ckpt))
    assert s.snapshot.id != before.id and s.snapshot.manifest["compacted_from"] == before.id
    assert s.size("dna") == len(keys) - 1 + len(new)
    assert s.has_key(new[0].id) and not s.has_key(keys[0].id)
    # one text key per taxonomy still carried by a key: a species whose only key was removed loses its name
    assert s.size("text") == len({r.species for r in keys[1:] + new})
    # the added barcode finds itself: it was embedded with the same checkpoint as the main keys
    from clibd.embedder import Embedder
    vec = Embedder.from_checkpoint(ckpt, device="cpu").encode_dna([new[0].dna])
    assert s.search(vec, 1, "dna")[0][0].record.id == new[0].id


def test_index_compact_refuses_added_records_contradicting_the_references_lineage(synth_dir, tmp_path):
    import dataclasses

    from clibd.records import write_records
    ckpt = save_checkpoint(create_model("clibd-tiny"), tmp_path / "m.pt")
    records = read_records(synth_dir / "partition" / "records.tsv")
    keys = [r for r in records if r.split == "key_seen"]
    write_records(keys, tmp_path / "keys.tsv")
    root = tmp_path / "index"
    assert main(["index", "build", "--checkpoint", str(ckpt), "--records", str(tmp_path / "keys.tsv"),
                 "--out", str(root), "--modalities", "dna,text"]) == 0
    before = Searcher.open(root).snapshot.id
    other_family = next(r.family for r in keys if r.family != keys[0].family)
    wrong = dataclasses.replace(keys[0], id="W1", family=other_family, species=keys[0].genus + " sp. w")
    write_records([wrong], tmp_path / "wrong.tsv")
    with pytest.raises(SystemExit) as exc:
        main(["index", "compact", "--root", str(root), "--checkpoint", str(ckpt), "--add", str(tmp_path / "wrong.tsv")])
    assert exc.value.code == 2 and Searcher.open(root).snapshot.id == before  # nothing written
    # removing every key of that genus in the same run leaves nothing to contradict: the new lineage stands
    (tmp_path / "gone.txt").write_text("".join(r.id + "\n" for r in keys if r.genus == keys[0].genus))
    assert main(["index", "compact", "--root", str(root), "--checkpoint", str(ckpt), "--add",
                 str(tmp_path / "wrong.tsv"), "--remove", str(tmp_path / "gone.txt")]) == 0
    assert Searcher.open(root).has_key("W1")


def test_index_compact_cli_refuses_additions_without_checkpoint(synth_dir, tmp_path):
    ckpt = save_checkpoint(create_model("clibd-tiny"), tmp_path / "m.pt")
    root = tmp_path / "index"
    records = synth_dir / "partition" / "records.tsv"
    assert main(["index", "build", "--checkpoint", str(ckpt), "--records", str(records), "--out", str(root),
                 "--splits", "key_seen", "--modalities", "dna"]) == 0
    with pytest.raises(SystemExit) as exc:
        main(["index", "compact", "--root", str(root), "--add", str(records)])
    assert exc.value.code == 2
