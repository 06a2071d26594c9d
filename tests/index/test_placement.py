"""Placing a new species in a genus: the closest barcode's, unless that genus cannot hold it."""
import dataclasses

from clibd.index.barcodes import Hit
from clibd.index.identity import IdentityBands, barcode_verdict
from clibd.index.placement import GenusSpread, fit_spread, spread_sample
from clibd.index.snapshot import KeyRecord
from clibd.index.thresholds import Thresholds


def _key(species, family="Noctuidae", n=0):
    return KeyRecord(id=f"{species}-{n}", modality="dna", order="Lepidoptera", family=family,
                     genus=species.split()[0], species=species)


def _hit(species, identity, family="Noctuidae"):
    return Hit(_key(species, family), identity, 650)


# Condica's species sit ~97% from each other; Euglyphis' ~88%: a barcode 89.5% from a Condica is no Condica.
SPREAD = GenusSpread({"Condica": [97.0, 1.0], "Euglyphis": [88.0, 1.5]}, [92.0, 3.0])


def test_a_new_species_too_far_for_its_closest_genus_goes_to_the_genus_that_can_hold_it():
    hits = [_hit("Condica vecors", 89.5), _hit("Euglyphis rivulosa", 88.4, "Lasiocampidae")]
    placed = SPREAD.place(hits)
    assert placed is hits[1]
    assert SPREAD.place([_hit("Condica vecors", 96.2), hits[1]]) is None  # close enough to be a Condica
    assert SPREAD.place([hits[0], _hit("Euglyphis rivulosa", 84.0)]) is None  # outside the window of 3 points
    assert SPREAD.place([hits[0], _hit("Euglyphis rivulosa", 85.0)]) is None  # and no better fit for Euglyphis
    assert SPREAD.place([hits[0]]) is None  # nowhere else to go


def test_the_placed_genus_is_shown_with_its_lineage_and_never_claimed():
    hits = [_hit("Condica vecors", 90.5), _hit("Condica sutor", 90.0),
            _hit("Euglyphis rivulosa", 88.4, "Lasiocampidae")]
    plain = barcode_verdict(hits, IdentityBands())
    assert plain.ranks["genus"].label == "Condica" and plain.ranks["family"].confident  # BOLD's 90% family band
    placed = barcode_verdict(hits, IdentityBands(placement=SPREAD))
    assert placed.status == "novel" and placed.novel_at_rank == "species"
    assert placed.ranks["genus"].label == "Euglyphis" and not placed.ranks["genus"].confident
    assert placed.ranks["family"].label == "Lasiocampidae" and not placed.ranks["family"].confident
    assert placed.deepest == "order" and placed.ranks["species"].label == "Euglyphis rivulosa"
    close = [_hit("Condica vecors", 98.9), hits[2]]  # a referenced species is never moved
    assert barcode_verdict(close, IdentityBands(placement=SPREAD)).ranks["genus"].label == "Condica"


def test_the_spread_of_a_genus_is_how_close_its_keys_come_to_another_of_its_species():
    keys = [_key("Condica vecors", n=0), _key("Condica vecors", n=1), _key("Condica sutor"),
            _key("Euglyphis rivulosa", "Lasiocampidae"), _key("Euglyphis ornata", "Lasiocampidae")]
    sample = spread_sample(keys)
    assert sorted(sample) == [0, 1, 2, 3, 4] and len(spread_sample(keys, per_genus=1)) == 2
    hits = {0: [Hit(keys[0], 100.0, 650), Hit(keys[1], 99.5, 650), Hit(keys[2], 96.0, 650)],
            1: [Hit(keys[1], 100.0, 650), Hit(keys[2], 98.0, 650)],
            2: [Hit(keys[2], 100.0, 650), Hit(keys[1], 98.0, 650)],
            3: [Hit(keys[3], 100.0, 650), Hit(keys[4], 87.0, 650)],
            4: [Hit(keys[4], 100.0, 650)]}  # its congener is not among its hits: no figure from it
    spread = fit_spread(keys, sample, [hits[i] for i in sample])
    condica, euglyphis = spread.by_genus["Condica"], spread.by_genus["Euglyphis"]
    assert 93.0 < spread.prior[0] < 95.0  # all genera: mean of 96, 98, 98, 87
    assert condica[0] > euglyphis[0] and condica[1] >= 1.0  # shrunk toward all genera, deviation at least 1
    assert fit_spread(keys, [4], [hits[4]]) is None  # no two species aligned: nothing to place by


def test_the_spread_is_kept_with_the_calibration(tmp_path):
    t = Thresholds({}, "abc", 0.95, barcode=IdentityBands(placement=SPREAD))
    t.save(tmp_path)
    back = Thresholds.load(tmp_path, "abc").barcode
    assert isinstance(back.placement, GenusSpread) and back.placement.by_genus == SPREAD.by_genus
    assert dataclasses.asdict(back) == dataclasses.asdict(IdentityBands(placement=SPREAD))
