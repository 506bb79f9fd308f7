"""Images for HTTP requests: local files as base64 data URLs; 3D volumes as a few axial slices."""

from __future__ import annotations

import base64
import functools
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp"}


def image_data_urls(path: str, options: Mapping[str, Any]) -> list[str]:
    """Data URLs for one image file, or for ``volume_slices`` slices of a ``.npy`` volume (default 4)."""
    return list(_encode(path, int(options.get("volume_slices", 4))))


@functools.lru_cache(maxsize=256)
def _encode(path: str, slices: int) -> tuple[str, ...]:
    suffix = Path(path).suffix.lower()
    if suffix == ".npy":
        return tuple(_volume_slices(path, slices))
    if suffix not in _MIME:
        raise ValueError(f"unsupported image type {suffix!r} ({path}); expected PNG, JPEG, GIF, WebP or .npy")
    data = Path(path).read_bytes()
    return (f"data:{_MIME[suffix]};base64,{base64.b64encode(data).decode('ascii')}",)


def _volume_slices(path: str, count: int) -> list[str]:
    """Evenly spaced axial slices of a (D, H, W) volume, intensity-scaled to 8-bit PNGs."""
    import numpy as np
    from PIL import Image

    volume = np.load(path)
    if volume.ndim != 3:
        raise ValueError(f"{path}: expected a 3D volume (depth, height, width), got shape {volume.shape}")
    indices = np.linspace(0, volume.shape[0] - 1, num=min(count, volume.shape[0])).round().astype(int)
    low, high = float(volume.min()), float(volume.max())
    urls = []
    for index in indices:
        plane = (volume[index] - low) / (high - low or 1.0) * 255.0
        buffer = io.BytesIO()
        Image.fromarray(plane.astype("uint8")).save(buffer, format="PNG")
        urls.append(f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}")
    return urls
