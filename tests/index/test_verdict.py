"""Verdicts and calibration on hand-made neighbours: the rules themselves, without a model."""
import numpy as np
import pytest

from clibd.index.searcher import Neighbor
from clibd.index.snapshot import KeyRecord
from clibd.fitting import precision_threshold, youden_threshold
from clibd.index.thresholds import Thresholds
from clibd.index.verdict import ModalityThresholds, fuse, modality_verdict

T = ModalityThresholds(confident={"order": 0.6, "family": 0.6, "genus": 0.6, "species": 0.6},
                       novel={"order": None, "family": None, "genus": 0.5, "species": 0.9})


def _n(species, sim, genus=None):
    genus = genus or species.split()[0]
    return Neighbor(KeyRecord(id=f"{species}-{sim}", modality="dna", order="Diptera", family="Muscidae",
                              genus=genus, species=species), sim)


def test_close_agreeing_neighbours_are_confident_to_species():
    v = modality_verdict([_n("Musca domestica", 0.97), _n("Musca domestica", 0.95), _n("Musca autumnalis", 0.7)], T)
    assert v.status == "confident" and v.deepest == "species" and v.ranks["species"].label == "Musca domestica"
    assert v.ranks["genus"].score == pytest.approx(1.0)


def test_known_genus_but_distant_nearest_key_is_a_new_species():
    v = modality_verdict([_n("Musca domestica", 0.8), _n("Musca autumnalis", 0.78)], T)
    assert v.status == "novel" and v.novel_at_rank == "species" and v.deepest == "genus"
    assert v.ranks["genus"].confident and not v.ranks["species"].confident


def test_split_votes_are_uncertain_not_novel():
    v = modality_verdict([_n("Musca domestica", 0.95), _n("Musca autumnalis", 0.95), _n("Musca vetustissima", 0.94)], T)
    assert v.status == "uncertain" and v.deepest == "genus"


def test_without_thresholds_nothing_is_confident_or_novel():
    v = modality_verdict([_n("Musca domestica", 0.99)] * 3, None)
    assert v.status == "uncertain" and v.deepest is None and v.ranks["species"].label == "Musca domestica"


def test_fusion_sides_with_the_confident_modality_and_flags_conflicts():
    dna = modality_verdict([_n("Musca domestica", 0.97)] * 3, T)
    img = modality_verdict([_n("Musca autumnalis", 0.4), _n("Musca domestica", 0.39)], T)
    f = fuse({"image": img, "dna": dna})
    assert f.status == "confident" and f.ranks["species"].label == "Musca domestica" and f.decided_by == ["dna"]
    other = modality_verdict([_n("Musca autumnalis", 0.97)] * 3, T)
    clash = fuse({"image": other, "dna": dna})
    assert not clash.ranks["species"].confident and clash.status != "confident"
    assert clash.ranks["genus"].confident  # they agree on the genus


def test_fused_novelty_needs_the_deciding_modality():
    dna = modality_verdict([_n("Musca domestica", 0.8)] * 3, T)
    img = modality_verdict([_n("Musca domestica", 0.3)] * 3, None)
    f = fuse({"image": img, "dna": dna})
    assert f.status == "novel" and f.novel_at_rank == "species" and f.decided_by == ["dna"]


def test_thresholds_round_trip_and_refuse_another_checkpoint(tmp_path):
    from clibd.index.thresholds import CalibrationMismatchError
    Thresholds({"dna": T}, "abc", 0.95, {"n": 1}).save(tmp_path)
    back = Thresholds.load(tmp_path, "abc")
    assert back.by_modality["dna"] == T
    with pytest.raises(CalibrationMismatchError):
        Thresholds.load(tmp_path, "other")
    assert Thresholds.load(tmp_path / "none") is None


def test_youden_threshold_separates_and_matches_a_brute_force_search():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(0.9, 0.03, 300), rng.normal(0.8, 0.03, 200)
    t = youden_threshold(pos, neg)
    best = max(np.unique(np.concatenate([pos, neg])), key=lambda c: (pos >= c).mean() + (neg < c).mean())
    assert (pos >= t).mean() + (neg < t).mean() == pytest.approx((pos >= best).mean() + (neg < best).mean())
    assert 0.82 < t < 0.88
    assert youden_threshold(pos, []) is None


def test_precision_threshold_is_the_least_score_reaching_the_target():
    rng = np.random.default_rng(1)
    scores = rng.uniform(0, 1, 2000)
    correct = rng.uniform(0, 1, 2000) < scores  # right more often when the score is high
    t = precision_threshold(scores, correct, 0.9)
    assert correct[scores >= t].mean() >= 0.9
    lower = np.sort(scores[scores < t])[-50:]
    assert all(correct[scores >= c].mean() < 0.9 for c in lower)  # no lower cut reaches the target
    assert precision_threshold(scores, np.zeros(2000, bool), 0.9) is None


def test_photo_answer_says_when_calibration_keeps_it_above_species():
    from clibd.index.identifier import photo_limit
    no_species = ModalityThresholds(confident={"order": 0.6, "family": 0.6, "genus": 0.6, "species": None},
                                    novel={"order": None, "family": None, "genus": None, "species": None})
    thresholds = Thresholds({"image": no_species}, "abc", 0.95, {"n": 1})
    photo = modality_verdict([_n("Musca domestica", 0.97), _n("Musca domestica", 0.95)], no_species)
    assert photo.deepest == "genus" and photo.status == "uncertain"
    note = photo_limit({"image": photo}, fuse({"image": photo}), thresholds)
    assert note.startswith("photos alone are never confident at species with this model") and "95%" in note
    # with a barcode, or where the photo threshold exists, nothing is said
    assert photo_limit({"image": photo, "dna": photo}, fuse({"image": photo, "dna": photo}), thresholds) is None
    full = Thresholds({"image": T}, "abc", 0.95, {"n": 1})
    assert photo_limit({"image": photo}, fuse({"image": photo}), full) is None
