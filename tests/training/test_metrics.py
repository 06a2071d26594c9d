"""The metric code against an independent, loop-by-loop computation on random labels."""
import numpy as np
import pytest

from clibd.training.metrics import chance_top1, harmonic_mean, micro_macro, topk_hits


def _reference(neighbors, truth, k):
    """Plain loops: micro = hits / labelled queries; macro = mean over classes of the class's hit rate."""
    hits_per_class, count_per_class = {}, {}
    total_hits = total = 0
    for row, t in zip(neighbors, truth):
        if t is None:
            continue
        hit = 0
        for label in row[:k]:
            if label == t:
                hit = 1
                break
        total_hits += hit
        total += 1
        hits_per_class[t] = hits_per_class.get(t, 0) + hit
        count_per_class[t] = count_per_class.get(t, 0) + 1
    macro = sum(hits_per_class[c] / count_per_class[c] for c in count_per_class) / len(count_per_class)
    return total_hits / total, macro


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 3, 5])
def test_micro_macro_match_reference_on_random_labels(seed, k):
    rng = np.random.default_rng(seed)
    classes = [f"s{i}" for i in range(int(rng.integers(3, 12)))]
    n = 200
    truth = [None if rng.random() < 0.1 else str(rng.choice(classes)) for _ in range(n)]
    # Skewed neighbour labels so micro and macro differ.
    weights = rng.dirichlet(np.ones(len(classes)) * 0.5)
    neighbors = [[str(c) for c in rng.choice(classes, size=5, p=weights)] for _ in range(n)]
    micro, macro, count = micro_macro(topk_hits(neighbors, truth, k), truth)
    ref_micro, ref_macro = _reference(neighbors, truth, k)
    assert count == sum(t is not None for t in truth)
    assert micro == pytest.approx(ref_micro)
    assert macro == pytest.approx(ref_macro)


def test_hand_worked_example_and_edge_cases():
    neighbors = [["a", "b"], ["a", "a"], ["b", "c"], ["c", "a"]]
    truth = ["a", "b", "b", None]
    hits = topk_hits(neighbors, truth, 1)
    assert hits.tolist() == [True, False, True, False]
    micro, macro, n = micro_macro(hits, truth)
    assert (micro, macro, n) == (pytest.approx(2 / 3), pytest.approx((1.0 + 0.5) / 2), 3)
    assert np.isnan(micro_macro(hits[:0], [])[0])
    assert harmonic_mean(0.5, 1.0) == pytest.approx(2 / 3) and harmonic_mean(0.0, 0.7) == 0.0
    assert chance_top1(["a", "b"], ["a", "a", "b", "c"]) == pytest.approx((0.5 + 0.25) / 2)
