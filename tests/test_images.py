"""Volumes become evenly spaced 8-bit slices, scaled over the whole volume, without loading it whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regbench.models.images import image_data_urls, load_images


def test_slices_are_scaled_over_the_whole_volume_with_nan_and_infinities(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    volume = rng.normal(0, 100, size=(7, 6, 5)).astype(np.float32)
    volume[1, 2, 3], volume[5, 0, 0] = np.nan, -np.inf  # NaN reads as 0, -inf as the lowest float
    volume[3, 1, 1] = 1e6
    np.save(tmp_path / "ct.npy", volume)
    whole = np.nan_to_num(volume.astype(np.float64))  # the definition: nan_to_num, then min and max of all
    low, high = whole.min(), whole.max()
    got = load_images(str(tmp_path / "ct.npy"), {"volume_slices": 3})
    for image, index in zip(got, (0, 3, 6), strict=True):  # linspace(0, 6, 3)
        expected = ((whole[index] - low) * (255.0 / (high - low))).round().astype(np.uint8)
        assert np.array_equal(np.asarray(image.convert("L")), expected)
    np.save(tmp_path / "flat.npy", np.full((2, 3, 3), 7, dtype=np.int16))
    assert all(not np.asarray(i).any() for i in load_images(str(tmp_path / "flat.npy"), {}))  # constant: black


@pytest.mark.parametrize("shape", [(0, 4, 4), (4, 4)])
def test_an_empty_or_flat_array_is_not_a_volume(tmp_path: Path, shape: tuple[int, ...]) -> None:
    np.save(tmp_path / "bad.npy", np.zeros(shape))
    with pytest.raises(ValueError, match="non-empty 3D volume"):
        image_data_urls(str(tmp_path / "bad.npy"), {})
