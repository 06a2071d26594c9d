import random

import numpy as np
import pytest

from clibd.training.metrics import auroc, best_threshold
from clibd.training.vsearch import vsearch_available, vsearch_top_hits


def _random_seq(n, seed):
    rng = random.Random(seed)
    return "".join(rng.choice("ACGT") for _ in range(n))


def test_auroc_matches_pair_counting_and_threshold_separates():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 40).round(1), rng.normal(0, 1, 50).round(1)
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p in pos for n in neg]
    assert auroc(pos, neg) == pytest.approx(np.mean(pairs))
    assert auroc([2, 3], [0, 1]) == 1.0 and auroc([0], [1]) == 0.0
    thr, acc = best_threshold([0.9, 0.95, 0.99], [0.5, 0.6, 0.7])
    assert 0.7 < thr <= 0.9 and acc == 1.0


@pytest.mark.skipif(not vsearch_available(), reason="vsearch is not installed (apt-get install vsearch)")
def test_vsearch_finds_the_closest_key_and_reports_no_hit():
    keys = [_random_seq(600, s) for s in range(5)]
    query = keys[3][:200] + ("A" if keys[3][200] != "A" else "C") + keys[3][201:]
    hits = vsearch_top_hits([query, _random_seq(600, 99)], keys, threads=1, min_identity=0.9)
    assert hits[0][0] == 3 and hits[0][1] == pytest.approx(100 * 599 / 600, abs=0.05)  # vsearch rounds to 0.1
    assert hits[1] == (None, 0.0)
