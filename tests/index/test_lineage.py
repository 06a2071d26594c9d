"""A new reference's lineage against the references' (`index.lineage`), over plain records."""
from clibd.index.lineage import lineage_conflict
from clibd.records import Record

KEYS = [Record(id="a1", order="Diptera", family="Culicidae", genus="Aedes", species="Aedes vexans"),
        Record(id="a2", order="Diptera", family="Culicidae", genus="Aedes", species="Aedes cinereus"),
        Record(id="c1", order="Diptera", family="Culicidae", genus="Culex", species=None),
        Record(id="m1", order="Diptera", family="Muscidae", genus="Musca", species="Musca domestica")]


def carrying(rank, name):
    return [k for k in KEYS if (k.label(rank) or "").lower() == name.lower()]


def test_a_lineage_the_references_share_passes_and_new_taxa_below_a_known_one_pass():
    assert lineage_conflict({"order": "Diptera", "family": "Culicidae", "genus": "Aedes",
                             "species": "Aedes vexans"}, carrying) is None
    assert lineage_conflict({"family": "Culicidae", "genus": "Aedes", "species": "Aedes sp. 3"}, carrying) is None
    assert lineage_conflict({"species": "Aedes vexans"}, carrying) is None  # ranks left empty agree
    assert lineage_conflict({"order": "Coleoptera", "family": "Carabidae"}, carrying) is None  # all new


def test_a_known_taxon_under_another_parent_or_spelled_otherwise_is_named():
    wrong = lineage_conflict({"order": "Diptera", "family": "Muscidae", "genus": "Aedes",
                              "species": "Aedes sp. 9"}, carrying)
    assert wrong.startswith("genus 'Aedes' is order Diptera, family Culicidae, genus Aedes in the references")
    assert "this reference gives order Diptera, family Muscidae, genus Aedes" in wrong
    spelled = lineage_conflict({"genus": "Aedes", "species": "aedes vexans"}, carrying)
    assert spelled.startswith("species 'aedes vexans' is ") and "species Aedes vexans" in spelled
    # the deepest known taxon decides: a new genus in a known family under another order
    assert lineage_conflict({"order": "Hemiptera", "family": "Culicidae", "genus": "Novus"},
                            carrying).startswith("family 'Culicidae'")
