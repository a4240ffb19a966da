"""The invariance analysis (paper Fig. 4): distances and the histogram PNG."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

from vissl_pirl_plugin.tools.invariance import plot_histograms, unit_distances


def test_distances_of_unit_normalised_embeddings():
    f = torch.tensor([[3.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    g = torch.tensor([[1.0, 0.0], [0.0, -5.0], [-1.0, 1.0]])
    # same direction (any scale), opposite, orthogonal
    assert torch.allclose(unit_distances(f, g), torch.tensor([0.0, 2.0, math.sqrt(2)]))


def test_heads_of_different_dimension_are_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        unit_distances(torch.ones(4, 128), torch.ones(4, 64))


def test_histogram_png_is_a_valid_image(tmp_path):
    rng = np.random.default_rng(0)
    png = plot_histograms({"PIRL": rng.uniform(0.3, 1.0, 200), "random": rng.normal(1.4, 0.03, 200)},
                          tmp_path / "plots" / "invariance.png", "test")
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
