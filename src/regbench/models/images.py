"""Images for model requests: files as they are, 3D volumes as a few axial slices.

The openai adapter sends base64 data URLs; the transformers adapter hands PIL images to its
processor. A ``.npy`` volume (depth, height, width) becomes ``volume_slices`` evenly spaced
axial slices (model option, default 4), intensity-scaled to 8 bits over the whole volume.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}
DEFAULT_SLICES = 4


def volume_slices(options: Mapping[str, Any]) -> int:
    """How many axial slices a 3D volume is sent as."""
    count = int(options.get("volume_slices", DEFAULT_SLICES))
    if count < 1:
        raise ValueError(f"volume_slices must be at least 1, got {count}")
    return count


def count_images(path: str, options: Mapping[str, Any]) -> int:
    """How many images one file is sent as (a ``.npy`` volume: its slices), without decoding it."""
    if Path(path).suffix.lower() != ".npy":
        return 1
    import numpy as np

    shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
    return min(volume_slices(options), shape[0]) if len(shape) == 3 else 1


def image_data_urls(path: str, options: Mapping[str, Any]) -> list[str]:
    """Data URLs for one image file, or for the slices of a ``.npy`` volume."""
    return list(_encode(path, volume_slices(options)))


def load_images(path: str, options: Mapping[str, Any]) -> list[Image.Image]:
    """RGB PIL images for one image file, or for the slices of a ``.npy`` volume."""
    from PIL import Image

    if Path(path).suffix.lower() == ".npy":
        return [plane.convert("RGB") for plane in _planes(path, volume_slices(options))]
    with Image.open(path) as image:
        return [image.convert("RGB")]


def _encode(path: str, slices: int) -> tuple[str, ...]:
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return _volume_urls(path, slices)
    if suffix not in _MIME:
        raise ValueError(f"unsupported image type {suffix!r} ({path}); expected PNG, JPEG, GIF, WebP or .npy")
    # Not cached: reading and encoding a file costs milliseconds, while 256 full-resolution
    # radiographs kept as base64 would hold gigabytes.
    data = Path(path).read_bytes()
    return (f"data:{_MIME[suffix]};base64,{base64.b64encode(data).decode('ascii')}",)


@functools.lru_cache(maxsize=64)
def _volume_urls(path: str, slices: int) -> tuple[str, ...]:
    """A volume's slices as PNG data URLs, kept for the later turns of a conversation (a few kB each)."""
    urls = []
    for plane in _planes(path, slices):
        buffer = io.BytesIO()
        plane.save(buffer, format="PNG")
        urls.append(f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}")
    return tuple(urls)


def _planes(path: str, count: int) -> list[Image.Image]:
    """Evenly spaced axial slices of a (D, H, W) volume as 8-bit grayscale images.

    The file is memory-mapped and read one slice at a time (NaN read as 0, infinities as the
    largest finite numbers), so a CT of hundreds of slices is never held whole, let alone as floats.
    """
    import numpy as np
    from PIL import Image

    volume = np.load(path, mmap_mode="r", allow_pickle=False)
    if volume.ndim != 3 or volume.size == 0:
        raise ValueError(f"{path}: expected a non-empty 3D volume (depth, height, width), got shape {volume.shape}")

    def plane(i: int) -> np.ndarray:
        return np.nan_to_num(np.asarray(volume[i], dtype=np.float64))

    low, high = math.inf, -math.inf
    for i in range(volume.shape[0]):
        values = plane(i)
        low, high = min(low, float(values.min())), max(high, float(values.max()))
    indices = np.linspace(0, volume.shape[0] - 1, num=min(count, volume.shape[0])).round().astype(int)
    scale = 255.0 / (high - low) if high > low else 0.0  # a constant volume is black, not a division by zero
    return [Image.fromarray(((plane(i) - low) * scale).round().astype(np.uint8)) for i in indices]
