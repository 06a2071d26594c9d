"""Contrastive loss, including the cross-GPU gather tested with the collective faked (as open_clip does)."""
import itertools

import pytest
import torch
import torch.nn.functional as F

import clibd.training.loss as loss_mod
from clibd.training.loss import ContrastiveLoss, soft_targets


def _features(n, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m: F.normalize(torch.randn(n, d, generator=g), dim=-1) for m in ("image", "dna", "text")}


def test_matches_symmetric_cross_entropy_averaged_over_pairs():
    feats, scale = _features(6), torch.tensor(10.0)
    total, terms = ContrastiveLoss()(feats, scale)
    expected = []
    for a, b in itertools.combinations(("image", "dna", "text"), 2):
        logits = scale * feats[a] @ feats[b].T
        expected.append((F.cross_entropy(logits, torch.arange(6)) + F.cross_entropy(logits.T, torch.arange(6))) / 2)
    assert total.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-6)
    assert set(terms) == {"image-dna", "image-text", "dna-text"}
    two, _ = ContrastiveLoss()({"image": feats["image"], "dna": feats["dna"]}, scale)
    assert two.item() == pytest.approx(expected[0].item(), rel=1e-6)


def test_species_positives_use_soft_targets_and_reduce_to_clip_for_distinct_labels():
    labels = torch.tensor([0, 0, 1, -4])
    t = soft_targets(labels)
    assert torch.allclose(t.sum(dim=1), torch.ones(4))
    assert t[0, 1] == 0.5 and t[3, 3] == 1.0 and t[0, 2] == 0.0
    feats, scale = _features(4, seed=1), torch.tensor(20.0)
    pair = {"image": feats["image"], "dna": feats["dna"]}
    aware, _ = ContrastiveLoss(species_positives=True)(pair, scale, labels)
    logits = scale * pair["image"] @ pair["dna"].T
    expected = (-(t * logits.log_softmax(1)).sum(1).mean() - (t.T * logits.T.log_softmax(1)).sum(1).mean()) / 2
    assert aware.item() == pytest.approx(expected.item(), rel=1e-6)
    distinct, _ = ContrastiveLoss(species_positives=True)(pair, scale, torch.arange(4))
    plain, _ = ContrastiveLoss()(pair, scale)
    assert distinct.item() == pytest.approx(plain.item(), rel=1e-6)


def test_gathered_loss_equals_full_batch_loss_and_gradients_reach_local_features(monkeypatch):
    world, n = 2, 4
    full = _features(world * n, seed=3)
    scale = torch.tensor(7.0)
    leaf = {m: v.clone().requires_grad_(True) for m, v in full.items()}
    reference, _ = ContrastiveLoss()(leaf, scale)
    reference.backward()
    for rank in range(world):
        local = {m: full[m][rank * n:(rank + 1) * n].clone().requires_grad_(True) for m in full}
        calls = []

        def fake_all_gather(out, tensor, m_iter=iter(["image", "dna", "text"])):
            m = next(m_iter)
            calls.append(m)
            for r in range(world):
                out[r].copy_(full[m][r * n:(r + 1) * n])

        monkeypatch.setattr(loss_mod.dist, "all_gather", fake_all_gather)
        loss, _ = ContrastiveLoss(rank=rank, world_size=world)(local, scale)
        assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
        loss.backward()
        for m in local:  # this rank's slice gets exactly the full-batch gradient
            assert torch.allclose(local[m].grad, leaf[m].grad[rank * n:(rank + 1) * n], atol=1e-6)
        assert calls == ["image", "dna", "text"]


def test_one_modality_is_refused():
    with pytest.raises(ValueError, match="two modalities"):
        ContrastiveLoss()({"image": torch.zeros(2, 3)}, torch.tensor(1.0))
