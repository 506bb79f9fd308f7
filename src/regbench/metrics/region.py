"""Region-centric metrics: MedRegA's Region-Aligned evaluation (2D and 3D), grounding, box regression.

``region_aligned`` (MedRegA §5.2, Appendix D, Algorithm 1; METRICS.md):

- ``mode: standard`` (default). Threshold-aware one-to-one matching (most hits, then most
  IoU); precision = hits / predicted boxes, recall = hits / reference boxes; names
  normalised and compared exactly (plus task synonyms) for ``object_*`` (distinct names) and
  ``alignment_*`` (a pair matches only when names agree); ``iou`` = total IoU of the region
  assignment / max(N, M); ``accuracy`` on single-object single-region samples. Per-sample
  values, averaged. True IoU in 2D and 3D.
- ``mode: medrega``: MedRegA's released evaluators (research note anchors-seed-code §1),
  which produced the paper's numbers: only ``[[int, int, int, int], ...]`` lists in the raw
  output count, on the 999 grid; names are the raw text before each list, aligned by
  lower-case substring either way; one ``linear_sum_assignment(1 - IoU)`` then thresholding;
  "precision" divides by the reference count and "recall" by the predicted count; hits at
  IoU >= 0.5, >= 0.75 in single-object multi-region, > 0.5 (with its own IoU rule) in
  single-object single-region; IoU pooled over the split.
- ``mode: m3d``: M3D's enclosing-box "IoU" and hits at IoU > 0.2.

Subtasks (``single_object_single_region`` ...) come from the options or from each reference.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linear_sum_assignment

from regbench.metrics.base import Metric, Stats, mean_of_sample_scores, register_metric
from regbench.metrics.geometry import enclosing_iou_matrix, giou_matrix, iou_matrix, l1_matrix
from regbench.metrics.matching import assign_batch
from regbench.types import Parsed, Region, Sample

Subtask = Literal[
    "single_object_single_region",
    "single_object_multi_region",
    "multi_object_single_region",
    "multi_object_multi_region",
]
LEVELS = ("region", "object", "alignment")
PRF_KEYS = tuple(f"{level}_{m}" for level in LEVELS for m in ("precision", "recall", "f1"))

# MedRegA's released parser (evaluator_reg.py PATTERN_REGCAP): double-bracketed integer lists only.
_MEDREGA_GROUP = re.compile(r"([^\[\]]*)(\[\[\d+,\s*\d+,\s*\d+,\s*\d+\](?:,\s*\[\d+,\s*\d+,\s*\d+,\s*\d+\])*\])")


def derive_subtask(reference: Sequence[Region]) -> str:
    """The text-to-region subtask a reference belongs to: objects x boxes per object."""
    names = {normalise_name(r.name) for r in reference}
    many_boxes = any(len(r.boxes) > 1 for r in reference)
    if len(names) <= 1:
        return (
            "single_object_multi_region"
            if many_boxes or sum(len(r.boxes) for r in reference) > 1
            else ("single_object_single_region")
        )
    return "multi_object_multi_region" if many_boxes else "multi_object_single_region"


def normalise_name(name: str, synonyms: dict[str, str] | None = None) -> str:
    """Lower case, trimmed, inner whitespace collapsed, trailing punctuation dropped, synonyms mapped."""
    name = re.sub(r"\s+", " ", name.strip().lower()).rstrip(".,;:!?。，；：")
    return (synonyms or {}).get(name, name)


def prf(hits: float, n_pred: float, n_ref: float) -> tuple[float, float, float]:
    """Precision, recall, F1 with regbench's edge rules: N = 0 gives P = 0; N = M = 0 gives 1, 1, 1."""
    if n_pred == 0 and n_ref == 0:
        return 1.0, 1.0, 1.0
    precision = hits / n_pred if n_pred else 0.0
    recall = hits / n_ref if n_ref else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


@dataclass
class BoxSet:
    """One sample's boxes as an array with a name per box."""

    boxes: np.ndarray
    names: list[str]

    @classmethod
    def from_regions(cls, regions: Sequence[Region], dims: int, synonyms: dict[str, str] | None = None) -> BoxSet:
        pairs = [(b, normalise_name(r.name, synonyms)) for r in regions for b in r.boxes if len(b) == dims]
        return cls(np.asarray([b for b, _ in pairs], dtype=np.float64).reshape(-1, dims), [n for _, n in pairs])


# ---------------------------------------------------------------- standard and m3d modes


def standard_counts(
    preds: Sequence[BoxSet], refs: Sequence[BoxSet], *, threshold: float, strict: bool = False, enclosing: bool = False
) -> list[dict[str, float]]:
    """Hits, aligned hits and assignment IoU of every sample, batched by (N, M, dims).

    ``strict`` counts a hit at IoU > threshold (M3D) instead of >=; ``enclosing`` uses M3D's
    enclosing-box IoU.
    """
    out: list[dict[str, float]] = [{} for _ in preds]
    groups: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    for i, (p, r) in enumerate(zip(preds, refs, strict=True)):
        groups[(len(p.names), len(r.names), r.boxes.shape[1])].append(i)
    for (n, m, _), members in groups.items():
        if n == 0 or m == 0:
            for i in members:
                out[i].update(hits=0.0, aligned=0.0, iou_sum=0.0, best_iou=0.0)
            continue
        pred = np.stack([preds[i].boxes for i in members])
        ref = np.stack([refs[i].boxes for i in members])
        iou = enclosing_iou_matrix(pred, ref) if enclosing else iou_matrix(pred, ref)
        hit = iou > threshold if strict else iou >= threshold
        assigned = assign_batch(np.where(hit, min(n, m) + 1.0, 0.0) + iou)
        same = _name_table(members, preds, refs)
        allowed_hit = hit & same
        aligned = assign_batch(np.where(allowed_hit, min(n, m) + 1.0, 0.0) + np.where(same, iou, 0.0))
        columns = {
            "hits": (assigned & hit).sum(axis=(1, 2)),
            "aligned": (aligned & allowed_hit).sum(axis=(1, 2)),
            "iou_sum": (assigned * iou).sum(axis=(1, 2)),
            "best_iou": iou[:, :, 0].max(axis=1),
        }
        lists = {key: values.astype(float).tolist() for key, values in columns.items()}
        for k, i in enumerate(members):
            out[i] = {key: values[k] for key, values in lists.items()}
    return out


def _name_ids(sets: Sequence[BoxSet], vocabulary: dict[str, int]) -> np.ndarray:
    """Every set's names as integer ids, shape (len(sets), names per set); new names extend the vocabulary."""
    flat = list(chain.from_iterable(s.names for s in sets))
    for name in dict.fromkeys(flat):
        vocabulary.setdefault(name, len(vocabulary))
    ids = np.fromiter(map(vocabulary.__getitem__, flat), dtype=np.intp, count=len(flat))
    return ids.reshape(len(sets), -1)


def _name_table(members: Sequence[int], preds: Sequence[BoxSet], refs: Sequence[BoxSet]) -> np.ndarray:
    """``same[b, i, j]``: predicted box i and reference box j of sample b carry the same name."""
    vocabulary: dict[str, int] = {}
    p = _name_ids([preds[i] for i in members], vocabulary)
    r = _name_ids([refs[i] for i in members], vocabulary)
    return p[:, :, None] == r[:, None, :]


# ---------------------------------------------------------------- medrega mode (released code)


def medrega_parse(raw: str) -> BoxSet:
    """MedRegA's released prediction parser: (preceding text, [[ints]]) groups, coordinates / 999."""
    boxes, names = [], []
    for text, lists in _MEDREGA_GROUP.findall(raw):
        for box in re.findall(r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\]", lists):
            boxes.append([int(v) / 999 for v in box])
            names.append(text.lower())
    return BoxSet(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), names)


def medrega_reference(regions: Sequence[Region]) -> BoxSet:
    """Reference boxes as the released code reads them: names lower-cased, nothing else."""
    pairs = [(b, r.name.lower()) for r in regions for b in r.boxes if len(b) == 4]
    return BoxSet(np.asarray([b for b, _ in pairs], dtype=np.float64).reshape(-1, 4), [n for _, n in pairs])


def medrega_align(pred: str, ref: str) -> bool:
    """The released name check: an empty predicted name, or one name inside the other."""
    return pred == "" or pred in ref or ref in pred


def medrega_counts(preds: Sequence[BoxSet], refs: Sequence[BoxSet], *, threshold: float) -> list[dict[str, float]]:
    """C, A, CA and the assigned IoU sum per sample, as ``linear_sum_assignment(1 - IoU)`` gives them.

    The assignment maximises total IoU; samples whose assignment includes a zero-IoU pair are
    re-solved with scipy itself, since which of several equal pairings it picks decides A.
    """
    out: list[dict[str, float]] = [{} for _ in preds]
    groups: dict[tuple[int, int], list[int]] = defaultdict(list)
    for i, (p, r) in enumerate(zip(preds, refs, strict=True)):
        groups[(len(p.names), len(r.names))].append(i)
    aligned_pairs: dict[tuple[str, str], bool] = {}
    for (n, m), members in groups.items():
        if n == 0 or m == 0:
            for i in members:
                out[i] = {"C": 0.0, "A": 0.0, "CA": 0.0, "iou_sum": 0.0, "pairs": 0.0}
            continue
        pred = np.stack([preds[i].boxes for i in members])
        ref = np.stack([refs[i].boxes for i in members])
        iou = iou_matrix(pred, ref)
        assigned = medrega_assignment(iou)
        align = _pair_table(members, preds, refs, aligned_pairs)
        hit = iou >= threshold
        columns = {
            "C": (assigned & hit).sum(axis=(1, 2)),
            "A": (assigned & align).sum(axis=(1, 2)),
            "CA": (assigned & hit & align).sum(axis=(1, 2)),
            "iou_sum": (assigned * iou).sum(axis=(1, 2)),
            "pairs": assigned.sum(axis=(1, 2)),
        }
        lists = {key: values.astype(float).tolist() for key, values in columns.items()}
        for k, i in enumerate(members):
            out[i] = {key: values[k] for key, values in lists.items()}
    return out


def medrega_assignment(iou: np.ndarray) -> np.ndarray:
    """The pairs ``linear_sum_assignment(1 - IoU)`` returns, for a ``(B, N, M)`` batch.

    It always returns min(N, M) pairs, zero-IoU ones included, and those decide the released
    "object" counts. When the zero-IoU pairs it must add are forced (none, or one row left with
    one column) they are added here; when several pairings tie, scipy itself is asked.
    """
    assigned = assign_batch(iou)
    free_rows, free_cols = ~assigned.any(axis=2), ~assigned.any(axis=1)
    still_open = np.minimum(free_rows.sum(axis=1), free_cols.sum(axis=1))
    forced = (free_rows.sum(axis=1) == 1) & (free_cols.sum(axis=1) == 1)
    ambiguous = (assigned & (iou <= 0)).any(axis=(1, 2)) | ((still_open > 0) & ~forced)
    single = np.flatnonzero(forced & ~ambiguous)
    assigned[single, free_rows[single].argmax(axis=1), free_cols[single].argmax(axis=1)] = True
    for k in np.flatnonzero(ambiguous):
        rows, cols = linear_sum_assignment(1 - iou[k])
        assigned[k] = False
        assigned[k, rows, cols] = True
    return assigned


def _pair_table(
    members: Sequence[int], preds: Sequence[BoxSet], refs: Sequence[BoxSet], cache: dict[tuple[str, str], bool]
) -> np.ndarray:
    """``align[b, i, j]`` by MedRegA's substring rule, evaluated once per distinct (name, name) pair."""
    p_vocab: dict[str, int] = {}
    r_vocab: dict[str, int] = {}
    p = _name_ids([preds[i] for i in members], p_vocab)
    r = _name_ids([refs[i] for i in members], r_vocab)
    table = np.zeros((len(p_vocab), len(r_vocab)), dtype=bool)
    for a, ia in p_vocab.items():
        for b, ib in r_vocab.items():
            if (a, b) not in cache:
                cache[(a, b)] = medrega_align(a, b)
            table[ia, ib] = cache[(a, b)]
    return table[p[:, :, None], r[:, None, :]]


def medrega_single_region_iou(pred: BoxSet, ref: BoxSet) -> float:
    """The single-object single-region evaluator's IoU: best box if more predictions than references, else the first."""
    if len(pred.names) == 0 or len(ref.names) == 0:
        return 0.0
    ious = iou_matrix(pred.boxes, ref.boxes[:1])[:, 0]
    return float(ious.max() if len(pred.names) > len(ref.names) else ious[0])


def medrega_rows(
    preds: Sequence[BoxSet], refs: Sequence[BoxSet], subtasks: Sequence[str], *, threshold: float | None = None
) -> list[Stats]:
    """Per-sample stats of MedRegA's released evaluator for each sample's subtask."""
    rows: list[Stats] = [{} for _ in preds]
    by_threshold: dict[float, list[int]] = defaultdict(list)
    for i, subtask in enumerate(subtasks):
        if subtask == "single_object_single_region":
            iou = medrega_single_region_iou(preds[i], refs[i])
            accuracy = float(iou > (threshold or 0.5))  # strict, as in the released single-region evaluator
            rows[i] = {
                "subtask": subtask,
                "n_pred": len(preds[i].names),
                "n_ref": len(refs[i].names),
                "ss_iou": iou,
                "accuracy": accuracy,
            }
        else:
            by_threshold[threshold or (0.75 if subtask == "single_object_multi_region" else 0.5)].append(i)
    for hit_threshold, members in by_threshold.items():
        found = medrega_counts([preds[i] for i in members], [refs[i] for i in members], threshold=hit_threshold)
        for i, c in zip(members, found, strict=True):
            g, p = len(refs[i].names), len(preds[i].names)
            row: Stats = {"subtask": subtasks[i], "n_pred": p, "n_ref": g, **c}
            for level, count in (("region", c["C"]), ("object", c["A"]), ("alignment", c["CA"])):
                precision = count / g if g else 0.0  # the released (swapped) naming: divided by references
                recall = count / p if p else 0.0
                f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
                row.update({f"{level}_precision": precision, f"{level}_recall": recall, f"{level}_f1": f1})
            if subtasks[i] == "single_object_multi_region":  # names unused; IoU pooled over assigned pairs
                row.update(dict.fromkeys(PRF_KEYS[3:]))
                row["iou_den"] = c["pairs"]
            else:
                row["iou_den"] = float(g)
            rows[i] = row
    return rows


# ---------------------------------------------------------------- the plugin


class RegionOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["standard", "medrega", "m3d"] = "standard"
    iou_threshold: float | None = Field(None, gt=0, le=1)
    """Hit threshold; default 0.5 (standard), MedRegA's per-subtask values (medrega), 0.2 strict (m3d)."""
    subtask: Subtask | None = None
    """Force a subtask; by default each sample's reference decides."""
    synonyms: dict[str, str] = Field(default_factory=dict)
    """Predicted name -> reference name, applied after normalisation (standard and m3d modes)."""


@register_metric("region_aligned")
class RegionAligned(Metric):
    """Region / object / alignment precision, recall, F1, IoU, accuracy (MedRegA Region-Aligned evaluation)."""

    keys = {**dict.fromkeys(PRF_KEYS, True), "iou": True, "accuracy": True}
    Options = RegionOptions

    @property
    def opts(self) -> RegionOptions:
        return self.options  # type: ignore[return-value]

    def __init__(self, options: BaseModel | None = None, context: object = None) -> None:
        super().__init__(options, context)  # type: ignore[arg-type]
        # Pooled IoU (medrega) needs the whole list in finalize; the others are per-sample means.
        self.aggregation = "corpus" if self.opts.mode == "medrega" else "mean"  # type: ignore[misc]

    def threshold(self) -> tuple[float, bool]:
        """(threshold, strict) of the standard and m3d modes (medrega's are per subtask, in medrega_rows)."""
        if self.opts.mode == "m3d":
            return self.opts.iou_threshold or 0.2, True
        return self.opts.iou_threshold or 0.5, False

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        return self.stats_batch([(parsed, sample)])[0]

    def stats_batch(self, items: Sequence[tuple[Parsed, Sample]]) -> list[Stats]:
        subtasks = [self.opts.subtask or derive_subtask(s.objects) for _, s in items]
        if self.opts.mode == "medrega":
            return self._medrega(items, subtasks)
        dims = [next((len(b) for r in s.objects for b in r.boxes), 4) for _, s in items]
        synonyms = {normalise_name(k): normalise_name(v) for k, v in self.opts.synonyms.items()}
        preds = [BoxSet.from_regions(p.objects, d, synonyms) for (p, _), d in zip(items, dims, strict=True)]
        refs = [BoxSet.from_regions(s.objects, d) for (_, s), d in zip(items, dims, strict=True)]
        rows: list[Stats] = []
        threshold, strict = self.threshold()
        counts = standard_counts(preds, refs, threshold=threshold, strict=strict, enclosing=self.opts.mode == "m3d")
        for i, (pred, ref) in enumerate(zip(preds, refs, strict=True)):
            c, n, m = counts[i], len(pred.names), len(ref.names)
            row: Stats = {"subtask": subtasks[i], "n_pred": n, "n_ref": m, "hits": c["hits"]}
            levels = {
                "region": (c["hits"], n, m),
                "object": (len(set(pred.names) & set(ref.names)), len(set(pred.names)), len(set(ref.names))),
                "alignment": (c["aligned"], n, m),
            }
            for level, counts_ in levels.items():
                row.update(zip((f"{level}_precision", f"{level}_recall", f"{level}_f1"), prf(*counts_), strict=True))
            row["iou"] = c["iou_sum"] / max(n, m) if max(n, m) else 1.0
            if subtasks[i] == "single_object_single_region":
                best = c["best_iou"]
                row["accuracy"] = float(best > threshold if strict else best >= threshold)
            rows.append(row)
        return rows

    def _medrega(self, items: Sequence[tuple[Parsed, Sample]], subtasks: list[str]) -> list[Stats]:
        preds = [medrega_parse(p.raw or p.text) for p, _ in items]
        refs = [medrega_reference(s.objects) for _, s in items]
        return medrega_rows(preds, refs, subtasks, threshold=self.opts.iou_threshold)

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        scores = {key: stats.get(key) for key in self.keys}
        if self.opts.mode == "medrega":
            den = stats.get("iou_den")
            scores["iou"] = stats.get("ss_iou", stats["iou_sum"] / den if den else None)
        return scores

    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        values = mean_of_sample_scores([self.sample_scores(s) for s in stats])
        if self.opts.mode == "medrega":
            pooled = [s for s in stats if "iou_den" in s]
            singles = [s["ss_iou"] for s in stats if "ss_iou" in s]
            den = sum(s["iou_den"] for s in pooled)
            parts = []
            if pooled:
                parts.append(sum(s["iou_sum"] for s in pooled) / den if den else 0.0)
            if singles:
                parts.append(sum(singles) / len(singles))
            values.pop("iou", None)
            if len(parts) == 1:
                values["iou"] = parts[0]
            elif parts:  # a split mixing subtasks: each evaluator's IoU, weighted by its samples
                values["iou"] = (parts[0] * len(pooled) + parts[1] * len(singles)) / (len(pooled) + len(singles))
        return values

    def signature(self, key: str | None = None) -> str:
        from regbench import __version__

        opts = self.opts
        parts = [key or self.name, f"plugin:{self.name}", f"mode:{opts.mode}"]
        parts.append(f"iou:{opts.iou_threshold}" if opts.iou_threshold else f"iou:{_THRESHOLDS[opts.mode]}")
        parts.append(f"subtask:{opts.subtask or 'derived'}")
        parts.append("match:" + ("iou-max" if opts.mode == "medrega" else "hits-then-iou"))
        if opts.mode == "medrega":
            parts.append("pr:swapped|names:substring|parse:double-bracket|scale:999|iou_agg:pooled")
        if opts.mode == "m3d":
            parts.append("iou_def:enclosing")
        if opts.synonyms:
            parts.append(f"synonyms:{len(opts.synonyms)}")
        return "|".join([*parts, f"regbench:{__version__}"])


_THRESHOLDS = {"standard": "0.5", "medrega": "0.5,sm:0.75,ss:>0.5", "m3d": ">0.2"}


# ---------------------------------------------------------------- grounding and box regression


class GroundingOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["standard", "m3d"] = "standard"
    hit_threshold: float | None = Field(None, gt=0, le=1)
    """``hit_rate`` threshold: default 0.5 (>=); in m3d mode 0.2 (>), with M3D's enclosing-box IoU."""


@register_metric("grounding")
class Grounding(Metric):
    """Single-box grounding (M4CXR phrase grounding, M3D REC): Acc@0.5, mIoU, hit rate of the first box."""

    keys = {"acc_iou50": True, "miou": True, "hit_rate": True}
    Options = GroundingOptions

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        opts: GroundingOptions = self.options  # type: ignore[assignment]
        ref = next((b for r in sample.objects for b in r.boxes), None)
        pred = next((b for r in parsed.objects for b in r.boxes if ref is not None and len(b) == len(ref)), None)
        iou = 0.0
        if ref is not None and pred is not None:
            matrix = enclosing_iou_matrix if opts.mode == "m3d" else iou_matrix
            iou = float(matrix(np.array([pred]), np.array([ref]))[0, 0])
        threshold = opts.hit_threshold or (0.2 if opts.mode == "m3d" else 0.5)
        hit = iou > threshold if opts.mode == "m3d" else iou >= threshold
        return {"iou": iou, "acc_iou50": float(iou >= 0.5), "miou": iou, "hit_rate": float(hit)}


@register_metric("box_regression")
class BoxRegression(Metric):
    """VividMed box metrics on Hungarian-matched pairs (cost l1 + 1 - GIoU): l1, GIoU, 1 - GIoU."""

    keys = {"l1": False, "giou": True, "giou_loss": False}

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        dims = next((len(b) for r in sample.objects for b in r.boxes), 4)
        pred = BoxSet.from_regions(parsed.objects, dims).boxes
        ref = BoxSet.from_regions(sample.objects, dims).boxes
        if len(pred) == 0 or len(ref) == 0:
            return {"l1": None, "giou": None, "giou_loss": None, "pairs": 0}
        l1, giou = l1_matrix(pred, ref), giou_matrix(pred, ref)
        rows, cols = linear_sum_assignment(l1 + (1 - giou))
        mean_giou = float(giou[rows, cols].mean())
        return {"l1": float(l1[rows, cols].mean()), "giou": mean_giou, "giou_loss": 1 - mean_giou, "pairs": len(rows)}
