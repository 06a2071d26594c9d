from collections import Counter, defaultdict

import pytest

from clibd.training.partition import PartitionConfig, count_report, partition
from clibd.records import Record


def _records():
    recs = []
    # 20 species of 20 records in 10 genera, 5 species of 5 records, 2 singletons, 30 unlabelled.
    for s in range(20):
        recs += [Record(id=f"L{s}-{i}", genus=f"G{s // 2}", species=f"G{s // 2} sp{s}") for i in range(20)]
    for s in range(5):
        recs += [Record(id=f"S{s}-{i}", genus="Gs", species=f"Gs small{s}") for i in range(5)]
    recs += [Record(id=f"O{s}", genus="Go", species=f"Go one{s}") for s in range(2)]
    recs += [Record(id=f"U{i}", order="Diptera") for i in range(30)]
    return recs


def test_recipe_sizes_and_disjointness():
    recs = partition(_records(), PartitionConfig(seed=0))
    by_split = defaultdict(set)
    for r in recs:
        by_split[r.split].add(r.species)
    seen = by_split["train"]
    assert len(seen) == 16  # 80% of the 20 large species
    assert by_split["val"] == by_split["test"] == by_split["key_seen"] == seen
    unseen = by_split["val_unseen"] | by_split["test_unseen"]
    assert not unseen & seen and not by_split["val_unseen"] & by_split["test_unseen"]
    assert len(unseen) == 4 + 5  # 4 held-out large species + 5 small ones
    assert by_split["key_unseen"] == unseen
    assert Counter(r.split for r in recs)["pretrain"] == 30
    assert Counter(r.split for r in recs)["other_heldout"] == 2
    per = Counter((r.species, r.split) for r in recs if r.species == next(iter(sorted(seen))))
    assert sorted(per.values()) == [2, 2, 2, 14]  # 70/10/10/10 of 20
    report = count_report(recs)
    assert report["train"]["species"] == 16 and report["pretrain"]["records"] == 30


def test_deterministic_by_seed():
    a = [r.split for r in partition(_records(), PartitionConfig(seed=3))]
    b = [r.split for r in partition(_records(), PartitionConfig(seed=3))]
    c = [r.split for r in partition(_records(), PartitionConfig(seed=4))]
    assert a == b and a != c


def test_congeneric_strategy_keeps_a_seen_congener():
    recs = partition(_records(), PartitionConfig(seed=0, unseen_strategy="congeneric"))
    seen_genera = {r.genus for r in recs if r.split == "train"}
    large_unseen = {r.genus for r in recs if r.split in ("val_unseen", "test_unseen") and r.genus != "Gs"}
    assert large_unseen and large_unseen <= seen_genera
    with pytest.raises(ValueError, match="unknown unseen strategy"):
        partition(_records(), PartitionConfig(unseen_strategy="nope"))
