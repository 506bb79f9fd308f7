"""Region scoring throughput: regbench's batched medrega mode against a per-sample reference loop.

The reference loop is written the way MedRegA's released multi-region evaluator works
(src/eval/regt2r, research/anchors-seed-code.md §1): for each sample, a torch IoU matrix
(torchvision's box_iou formula), one ``scipy.optimize.linear_sum_assignment(1 - IoU)``, matches
at IoU >= 0.5, names aligned by substring, "precision" = C / references, "recall" = C /
predictions, per-sample F1, IoU pooled over the split. Both sides get the same parsed boxes and
names; the script asserts that every aggregate agrees, then reports samples per second and the
ratio. A second figure times the standard mode (threshold-aware matching), which has no released
counterpart.

Usage: python bench/bench_region.py [--n 100000] [--seed 0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from scipy.optimize import linear_sum_assignment

from regbench.metrics.region import (
    BoxColumns,
    RegionAligned,
    medrega_columns,
    medrega_rows,
    standard_columns,
    standard_rows,
)

NAMES = ["liver", "left kidney", "right kidney", "spleen", "pancreas", "heart", "left lung", "right lung"]
Boxes = list[list[list[float]]]
Names = list[list[str]]


def synthetic(n: int, seed: int) -> tuple[Boxes, Names, Boxes, Names]:
    """~5 reference boxes per sample over 2-3 named objects; predictions jittered, some dropped or added.

    Returned as per-sample Python lists (what a parser hands over), on MedRegA's 0-999 grid / 999.
    """
    rng = np.random.default_rng(seed)
    pred_boxes, pred_names, ref_boxes, ref_names = [], [], [], []
    for _ in range(n):
        m = int(rng.integers(3, 8))
        lo = rng.random((m, 2)) * 0.7
        size = 0.05 + rng.random((m, 2)) * 0.25
        ref = np.concatenate([lo, lo + size], axis=1)
        names = [str(x) for x in rng.choice(NAMES[:4] if rng.random() < 0.5 else NAMES[4:], size=m)]
        keep = rng.random(m) > 0.15
        pred = ref[keep] + rng.normal(0, 0.02, (int(keep.sum()), 4))
        names_p = [
            f"<ref>{name}</ref><box>" if rng.random() > 0.1 else "<ref>kidney</ref><box>"
            for name, k in zip(names, keep, strict=True)
            if k
        ]
        if rng.random() < 0.3:
            extra_lo = rng.random(2) * 0.7
            pred = np.vstack([pred, np.concatenate([extra_lo, extra_lo + 0.1])])
            names_p.append("<ref>spleen</ref><box>")
        pred_boxes.append((np.clip(np.round(pred * 999), 0, 999) / 999).tolist())
        pred_names.append(names_p)
        ref_boxes.append((np.round(ref * 999) / 999).tolist())
        ref_names.append(names)
    return pred_boxes, pred_names, ref_boxes, ref_names


def reference_loop(pred_boxes: Boxes, pred_names: Names, ref_boxes: Boxes, ref_names: Names) -> dict[str, float]:
    """Per sample, like the released multi-region evaluator: torch box IoU, scipy assignment, python counts.

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
    for boxes_p, names_p, boxes_g, names_g in zip(pred_boxes, pred_names, ref_boxes, ref_names, strict=True):
        pred_name = dict(enumerate(names_p))
        gt_name = dict(enumerate(names_g))
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


def ours(pred_boxes: Boxes, pred_names: Names, ref_boxes: Boxes, ref_names: Names) -> dict[str, float]:
    """The plugin's path: lists -> columns -> per-sample stats records -> the plugin's finalize."""
    plugin = RegionAligned(RegionAligned.Options(mode="medrega"))
    pred = BoxColumns.from_lists(pred_boxes, pred_names, 4)
    ref = BoxColumns.from_lists(ref_boxes, ref_names, 4)  # reference names are lower-case already
    values = plugin.finalize(medrega_rows(pred, ref, ["multi_object_multi_region"] * len(ref)))
    out = {"iou": values["iou"]}
    for prefix, level in (("r", "region"), ("o", "object"), ("a", "alignment")):
        for suffix, stat in (("p", "precision"), ("r", "recall"), ("f", "f1")):
            out[prefix + suffix] = values[f"{level}_{stat}"]
    return out


def ours_columns(pred_boxes: Boxes, pred_names: Names, ref_boxes: Boxes, ref_names: Names) -> dict[str, float]:
    """The scoring core only: lists -> columns -> counts (numpy), no per-sample dicts."""
    pred = BoxColumns.from_lists(pred_boxes, pred_names, 4)
    ref = BoxColumns.from_lists(ref_boxes, ref_names, 4)  # reference names are lower-case already
    c = medrega_columns(pred, ref, np.full(len(ref), 0.5))
    g, p = ref.counts, pred.counts
    out = {}
    for prefix, count in (("r", c["C"]), ("o", c["A"]), ("a", c["CA"])):
        pre = np.divide(count, g, out=np.zeros_like(count), where=g > 0)
        rec = np.divide(count, p, out=np.zeros_like(count), where=p > 0)
        f1 = np.divide(2 * pre * rec, pre + rec, out=np.zeros_like(count), where=pre + rec > 0)
        out.update({prefix + "p": pre.mean(), prefix + "r": rec.mean(), prefix + "f": f1.mean()})
    out["iou"] = c["iou_sum"].sum() / g.sum()
    return out


def counts_only(pred: BoxColumns, ref: BoxColumns) -> dict[str, np.ndarray]:
    """The matching engine alone: columns already built, counts out."""
    return medrega_columns(pred, ref, np.full(len(ref), 0.5))


def standard(pred_boxes: Boxes, pred_names: Names, ref_boxes: Boxes, ref_names: Names) -> list[dict]:
    """regbench's default mode (threshold-aware matching): lists -> columns -> per-sample records."""
    pred = BoxColumns.from_lists(pred_boxes, pred_names, 4)
    ref = BoxColumns.from_lists(ref_boxes, ref_names, 4)
    columns = standard_columns(pred, ref, threshold=0.5)
    subtasks = ["multi_object_multi_region"] * len(ref)
    return standard_rows(columns, pred.counts, ref.counts, subtasks, threshold=0.5, strict=False)


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
    data = synthetic(args.n, args.seed)
    boxes = sum(map(len, data[2])) / args.n
    print(f"{args.n} samples, {boxes:.1f} reference boxes each on average; {platform.machine()}")
    expected, slow = timed(reference_loop, *data)
    print(f"reference loop (released-style)    {slow:7.3f} s  {args.n / slow:10,.0f} samples/s")
    for label, function in (
        ("regbench medrega, stats + finalize", ours),
        ("regbench medrega, columns only", ours_columns),
    ):
        runs = [timed(function, *data) for _ in range(args.repeat)]
        got, fast = runs[0][0], min(t for _, t in runs)
        for key, value in expected.items():
            assert abs(got[key] - value) < 1e-9, (label, key, got[key], value)
        print(f"{label:35s}{fast:7.3f} s  {args.n / fast:10,.0f} samples/s  {slow / fast:6.1f}x")
    print("all 10 aggregates equal (region, object, alignment P/R/F1 and pooled IoU)")
    columns = BoxColumns.from_lists(data[0], data[1], 4), BoxColumns.from_lists(data[2], data[3], 4)
    fast = min(timed(counts_only, *columns)[1] for _ in range(args.repeat))
    label = "regbench medrega, engine only"
    print(f"{label:35s}{fast:7.3f} s  {args.n / fast:10,.0f} samples/s  {slow / fast:6.1f}x  (lists already arrays)")
    fast = min(timed(standard, *data)[1] for _ in range(args.repeat))
    print(f"{'regbench standard, stats records':35s}{fast:7.3f} s  {args.n / fast:10,.0f} samples/s")


if __name__ == "__main__":
    main()
