"""Region scoring throughput: regbench's medrega mode against a per-sample loop like the released evaluator.

Both sides get the same inputs: for each sample, the model's output string (``Parsed.raw``) and
the reference objects of the canonical sample. The reference loop is written the way MedRegA's
released multi-region evaluator works (src/eval/regt2r, research/anchors-seed-code.md §1): per
sample, its regex over the output and ``ast.literal_eval`` of each ``[[...]]`` list, coordinates
/ 999 (the released per-axis image scaling cancels in IoU and is left out), a torch IoU matrix
(torchvision's box_iou formula), one ``scipy.optimize.linear_sum_assignment(1 - IoU)``, matches
at IoU >= 0.5, names aligned by substring, "precision" = C / references, "recall" = C /
predictions, per-sample F1, IoU pooled over the split. regbench runs its plugin as ``regbench
score`` does: ``stats_batch`` over all samples, then ``finalize``. The script asserts that all
ten aggregates agree, then reports samples per second and the ratio. Further rows time parts of
regbench's path, and the standard mode (threshold-aware matching, no released counterpart).

Usage: python bench/bench_region.py [--n 100000] [--seed 0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import ast
import platform
import re
import time

import numpy as np
from scipy.optimize import linear_sum_assignment

from regbench.metrics.region import BoxColumns, RegionAligned, medrega_boxes, medrega_columns
from regbench.types import Parsed, Region, Sample

NAMES = ["liver", "left kidney", "right kidney", "spleen", "pancreas", "heart", "left lung", "right lung"]
Items = list[tuple[Parsed, Sample]]


def grouped(boxes: np.ndarray, names: list[str]) -> dict[str, list[list[int]]]:
    """Boxes on the 0-999 grid, grouped by object name in order of first appearance."""
    groups: dict[str, list[list[int]]] = {}
    for box, name in zip(np.round(boxes * 999).astype(int).tolist(), names, strict=True):
        groups.setdefault(name, []).append(box)
    return groups


def synthetic(n: int, seed: int) -> Items:
    """~5 reference boxes per sample over 2-4 named objects; predictions jittered, some dropped or added.

    Each prediction is a MedRegA-style output string, ``<ref>name</ref><box>[[x1, y1, x2, y2], ...]</box>``
    per object; 10% of predicted names are wrong ("kidney" for anything).
    """
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        m = int(rng.integers(3, 8))
        lo = rng.random((m, 2)) * 0.7
        size = 0.05 + rng.random((m, 2)) * 0.25
        ref = np.concatenate([lo, lo + size], axis=1)
        names = [str(x) for x in rng.choice(NAMES[:4] if rng.random() < 0.5 else NAMES[4:], size=m)]
        keep = rng.random(m) > 0.15
        pred = np.clip(ref[keep] + rng.normal(0, 0.02, (int(keep.sum()), 4)), 0, 1)
        names_p = [name if rng.random() > 0.1 else "kidney" for name, k in zip(names, keep, strict=True) if k]
        if rng.random() < 0.3:
            extra_lo = rng.random(2) * 0.7
            pred = np.vstack([pred, np.concatenate([extra_lo, extra_lo + 0.1])])
            names_p.append("spleen")
        output = ", ".join(f"<ref>{name}</ref><box>{boxes}</box>" for name, boxes in grouped(pred, names_p).items())
        objects = [
            Region(name=name, boxes=[[v / 999 for v in box] for box in boxes])
            for name, boxes in grouped(ref, names).items()
        ]
        items.append((Parsed(raw=output), Sample(id=str(i), objects=objects)))
    return items


# The released evaluator's prediction pattern (evaluator_reg.py PATTERN_REGCAP).
RELEASED_PATTERN = re.compile(r"([^\[\]]*)(\[\[\d+,\s*\d+,\s*\d+,\s*\d+\](?:,\s*\[\d+,\s*\d+,\s*\d+,\s*\d+\])*\])")


def reference_loop(items: Items) -> dict[str, float]:
    """Per sample, like the released multi-region evaluator: regex + literal_eval, torch box IoU, scipy, python counts.

    (The released code builds float32 tensors; float64 here, so both sides see the same IoU values.)
    """
    import torch

    def box_area(boxes: torch.Tensor) -> torch.Tensor:
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

    def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        lt = torch.max(a[:, None, :2], b[:, :2])
        rb = torch.min(a[:, None, 2:], b[:, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[:, :, 0] * wh[:, :, 1]
        return inter / (box_area(a)[:, None] + box_area(b) - inter)

    totals: dict[str, list[float]] = {key: [] for key in ("rp", "rr", "rf", "op", "or", "of", "ap", "ar", "af")}
    iou_total = gt_total = 0.0
    for parsed, sample in items:
        boxes_p, pred_name = [], {}
        for text, lists in RELEASED_PATTERN.findall(parsed.raw):
            for box in ast.literal_eval(lists):
                pred_name[len(boxes_p)] = text.lower()
                boxes_p.append([v / 999 for v in box])
        boxes_g, gt_name = [], {}
        for region in sample.objects:
            for box in region.boxes:
                gt_name[len(boxes_g)] = region.name.lower()
                boxes_g.append(box)
        g, p = len(boxes_g), len(boxes_p)
        gt_total += g
        counts = {"r": 0, "o": 0, "a": 0}
        if p:
            iou = box_iou(torch.tensor(boxes_p, dtype=torch.float64), torch.tensor(boxes_g, dtype=torch.float64))
            rows, cols = linear_sum_assignment(1 - iou.numpy())
            for r, c in zip(rows, cols, strict=True):
                value = iou[r, c].item()
                iou_total += value
                pn, gn = pred_name[r], gt_name[c]
                aligned = pn == "" or pn in gn or gn in pn
                counts["r"] += value >= 0.5
                counts["o"] += aligned
                counts["a"] += value >= 0.5 and aligned
        for prefix, count in counts.items():
            pre = count / g if g else 0.0
            rec = count / p if p else 0.0
            totals[prefix + "p"].append(pre)
            totals[prefix + "r"].append(rec)
            totals[prefix + "f"].append(2 * pre * rec / (pre + rec) if pre + rec else 0.0)
    out = {key: sum(values) / len(values) for key, values in totals.items()}
    out["iou"] = iou_total / gt_total
    return out


def short_names(values: dict[str, float]) -> dict[str, float]:
    out = {"iou": values["iou"]}
    for prefix, level in (("r", "region"), ("o", "object"), ("a", "alignment")):
        for suffix, stat in (("p", "precision"), ("r", "recall"), ("f", "f1")):
            out[prefix + suffix] = values[f"{level}_{stat}"]
    return out


def ours(items: Items) -> dict[str, float]:
    """The plugin as ``regbench score`` runs it: stats_batch over every sample, then finalize."""
    plugin = RegionAligned(RegionAligned.Options(mode="medrega", subtask="multi_object_multi_region"))
    return short_names(plugin.finalize(plugin.stats_batch(items)))


def columns_of(items: Items) -> tuple[BoxColumns, BoxColumns]:
    """Output strings and reference objects to flat box columns (the parsing part of the plugin)."""
    pred = medrega_boxes([parsed.raw for parsed, _ in items])
    ref = BoxColumns.from_regions((sample.objects for _, sample in items), 4, str.lower)
    return pred, ref


def counts_only(pred: BoxColumns, ref: BoxColumns) -> dict[str, np.ndarray]:
    """The matching engine alone: columns already built, counts out."""
    return medrega_columns(pred, ref, np.full(len(ref), 0.5))


def with_boxes(items: Items) -> Items:
    """The items with the medrega box format parser's objects (what the standard mode reads)."""
    from regbench.parsing import parse_output

    return [(parse_output(p.raw, box_format="medrega"), s) for p, s in items]


def standard(items: Items) -> dict[str, float]:
    """regbench's default mode (threshold-aware matching, exact names), the same plugin path."""
    plugin = RegionAligned(RegionAligned.Options(subtask="multi_object_multi_region"))
    return plugin.finalize(plugin.stats_batch(items))


def timed(function, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of regbench's side; the best is shown")
    args = parser.parse_args()
    items = synthetic(args.n, args.seed)
    boxes = sum(len(r.boxes) for _, s in items for r in s.objects) / args.n
    machine = platform.processor() or platform.machine()
    print(f"{args.n} samples, {boxes:.1f} reference boxes each on average; {machine}")
    expected, slow = timed(reference_loop, items)
    print(f"{'reference loop (released-style)':40s}{slow:7.3f} s  {args.n / slow:10,.0f} samples/s")

    def row(label: str, seconds: float, note: str = "") -> None:
        print(f"{label:40s}{seconds:7.3f} s  {args.n / seconds:10,.0f} samples/s  {slow / seconds:6.1f}x  {note}")

    runs = [timed(ours, items) for _ in range(args.repeat)]
    got = runs[0][0]
    for key, value in expected.items():
        assert abs(got[key] - value) < 1e-9, (key, got[key], value)
    row("regbench medrega: stats_batch + finalize", min(t for _, t in runs))
    print("all 10 aggregates equal (region, object, alignment P/R/F1 and pooled IoU)")
    row("  of which strings -> columns", min(timed(columns_of, items)[1] for _ in range(args.repeat)))
    columns = columns_of(items)
    row("  of which the matching engine", min(timed(counts_only, *columns)[1] for _ in range(args.repeat)))
    parsed = with_boxes(items)
    fast = min(timed(standard, parsed)[1] for _ in range(args.repeat))
    row("regbench standard: stats_batch + finalize", fast, "(boxes parsed beforehand; no released counterpart)")


if __name__ == "__main__":
    main()
