import numpy as np
from PIL import Image

from clibd import Embedder, create_model


def test_batches_match_single_items_for_every_input_kind(tmp_path):
    model = create_model("clibd-tiny", text_corpus=["Diptera Culicidae Aedes Aedes vexans"])
    emb = Embedder(model, device="cpu", batch_size=2)
    img = Image.new("RGB", (80, 60), (200, 30, 30))
    img.save(tmp_path / "a.png")
    gray = Image.new("L", (50, 50), 128)
    images = emb.encode_images([img, tmp_path / "a.png", gray])
    assert images.dtype == np.float32 and images.shape == (3, 128)
    np.testing.assert_allclose(images[0], images[1], atol=1e-6)  # PIL image and path agree
    seqs = ["ACGT" * 50, "acgu" * 50, "TTTTGGGGCCCC" * 30]
    batched = emb.encode_dna(seqs)
    np.testing.assert_allclose(batched[0], batched[1], atol=1e-6)
    np.testing.assert_allclose(batched[2], emb.encode_dna([seqs[2]])[0], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    texts = emb.encode_text([{"order": "Diptera", "family": "Culicidae"}, "Diptera Culicidae not_classified x"])
    assert texts.shape == (2, 128)
