"""Readers of public medical datasets in their publishers' layouts (docs/datasets.md).

``READERS`` maps each loader name (``dataset.loader``) to ``"module:Class"``, so a registry can import a
reader only when a task names it (pyarrow, Pillow and numpy stay unloaded otherwise). Each class
follows ``common.Reader``: ``name``, ``splits``, ``aliases``, ``Options`` and ``read(root, split,
options, *, base, skips)``.
"""

from __future__ import annotations

READERS: dict[str, str] = {
    "medrega_chat": "regbench.data.readers.medrega_chat:MedRegAChat",
    "slake": "regbench.data.readers.slake:Slake",
    "vqa_rad": "regbench.data.readers.vqa_rad:VqaRad",
    "iu_xray": "regbench.data.readers.iu_xray:IuXray",
    "ms_cxr": "regbench.data.readers.ms_cxr:MsCxr",
    "pmc_vqa": "regbench.data.readers.pmc_vqa:PmcVqa",
    "mimic_cxr": "regbench.data.readers.mimic_cxr:MimicCxr",
    "vindr_cxr": "regbench.data.readers.vindr_cxr:VindrCxr",
    "m3d": "regbench.data.readers.m3d:M3d",
    "medmnist": "regbench.data.readers.medmnist:MedMnist",
    "path_vqa": "regbench.data.readers.path_vqa:PathVqa",
    "hf": "regbench.data.readers.hf:Hf",
}
