import numpy as np
from PIL import Image

from clibd.readers import read_records
from clibd.training.synth import NOTICE, SynthConfig, generate


def _kmer_distance(a: str, b: str, k: int = 8) -> float:
    """Jaccard distance of k-mer sets: alignment-free, so trimmed barcode ends do not matter."""
    x = {a[i:i + k] for i in range(len(a) - k + 1)}
    y = {b[i:i + k] for i in range(len(b) - k + 1)}
    return 1 - len(x & y) / len(x | y)


def test_relatives_read_alike_and_output_is_labelled_synthetic(tmp_path):
    cfg = SynthConfig(orders=2, families_per_order=1, genera_per_family=2, species_per_genus=2,
                      specimens_per_species=(3, 3), image_size=32, seed=5)
    recs = generate(tmp_path, cfg, progress=False)
    assert len(recs) == 2 * 2 * 2 * 3
    assert NOTICE in (tmp_path / "SYNTHETIC.md").read_text()
    assert read_records(tmp_path / "records.tsv")[0].image == recs[0].image
    assert Image.open(recs[0].image).size == (32, 32)
    same_species = [_kmer_distance(a.dna, b.dna) for a in recs for b in recs if a.id < b.id and a.species == b.species]
    other_order = [_kmer_distance(a.dna, b.dna) for a in recs for b in recs if a.order != b.order]
    assert max(same_species) < min(other_order)
    again = generate(tmp_path / "again", cfg, progress=False)
    assert [r.dna for r in again] == [r.dna for r in recs]  # deterministic by seed


def test_species_barcodes_cluster_by_phylogeny(tmp_path):
    cfg = SynthConfig(orders=2, families_per_order=2, genera_per_family=2, species_per_genus=2,
                      specimens_per_species=(2, 2), image_size=16, seed=0,
                      mutation_rates={"order": 0.15, "family": 0.1, "genus": 0.06, "species": 0.03, "specimen": 0.0})
    recs = generate(tmp_path, cfg, progress=False)
    core = {r.species: r.dna for r in recs}
    tax = {r.species: r for r in recs}

    def dist(a, b):
        return _kmer_distance(core[a], core[b])

    names = sorted(core)
    same_genus = [dist(a, b) for a in names for b in names if a < b and tax[a].genus == tax[b].genus]
    same_order = [dist(a, b) for a in names for b in names
                  if a < b and tax[a].order == tax[b].order and tax[a].family != tax[b].family]
    other_order = [dist(a, b) for a in names for b in names if a < b and tax[a].order != tax[b].order]
    assert np.mean(same_genus) < np.mean(same_order) < np.mean(other_order)
