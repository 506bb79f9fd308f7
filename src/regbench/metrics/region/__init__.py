"""Region-centric metrics: MedRegA's Region-Aligned evaluation (2D and 3D), grounding, box regression.

``region_aligned`` (MedRegA §5.2, Appendix D, Algorithm 1; docs/region-metrics.md) is one registered
plugin whose ``mode`` option picks the metric (:class:`RegionAligned` builds the mode's class):

- ``standard`` (default, :class:`StandardRegion`): threshold-aware one-to-one matching, names
  normalised and compared exactly, per-sample values averaged;
- ``medrega`` (:class:`MedregaRegion`): MedRegA's released evaluators, on outputs read by the
  released parser (the ``medrega_released`` box format), IoU pooled over the split;
- ``m3d`` (:class:`M3DRegion`): the standard matching with M3D's enclosing-box IoU, hits at > 0.2.

Modules:

- :mod:`~regbench.metrics.region.columns`: boxes of many samples as flat columns
  (:class:`BoxColumns`), reading ``Region`` objects, the reference index, subtasks, names;
- :mod:`~regbench.metrics.region.blocks`: the matching code the modes share (samples in
  padded ``(B, N, M)`` blocks, sums in a fixed order);
- :mod:`~regbench.metrics.region.scores`: precision, recall and F1 from counts, one function
  for every mode, for one record or for columns;
- :mod:`~regbench.metrics.region.plugin`: the registered plugin, its options, what the modes share;
- :mod:`~regbench.metrics.region.standard`, :mod:`~regbench.metrics.region.medrega`: the modes;
- :mod:`~regbench.metrics.region.grounding`: ``grounding`` and ``box_regression``.

Scoring is column-wise: a batch of samples becomes flat box arrays, padded into blocks of
similar sizes, matched all at once (:mod:`regbench.metrics.matching`); only the per-sample
records are Python dicts. With numba installed (``regbench[fast]``), ``medrega`` mode counts
per sample in compiled loops instead (:mod:`regbench.metrics.accel`), with identical results.
"""

from regbench.metrics.region.columns import (
    SUBTASKS,
    BoxColumns,
    ReferenceIndex,
    RegionRead,
    Subtask,
    derive_subtask,
    normalise_name,
)
from regbench.metrics.region.grounding import BoxRegression, Grounding, GroundingOptions
from regbench.metrics.region.medrega import MedregaRegion, released_columns, released_counts
from regbench.metrics.region.plugin import RegionAligned, RegionOptions
from regbench.metrics.region.scores import precision_recall_f1
from regbench.metrics.region.standard import M3DRegion, StandardRegion, standard_counts

__all__ = [
    "SUBTASKS",
    "BoxColumns",
    "BoxRegression",
    "Grounding",
    "GroundingOptions",
    "M3DRegion",
    "MedregaRegion",
    "ReferenceIndex",
    "RegionAligned",
    "RegionOptions",
    "RegionRead",
    "StandardRegion",
    "Subtask",
    "derive_subtask",
    "normalise_name",
    "precision_recall_f1",
    "released_columns",
    "released_counts",
    "standard_counts",
]
