"""Region scoring throughput: regbench's batched medrega mode against a per-sample reference loop.

The reference loop is written the way MedRegA's released multi-region evaluator works
(src/eval/regt2r, research/anchors-seed-code.md §1): for each sample, a torch IoU matrix
(torchvision's box_iou formula), one ``scipy.optimize.linear_sum_assignment(1 - IoU)``, matches
at IoU >= 0.5, names aligned by substring, "precision" = C / references, "recall" = C /
predictions, per-sample F1, IoU pooled over the split. Both sides get the same parsed boxes and
names; the script asserts that every aggregate agrees, then reports samples per second and the
ratio. A second figure times the standard mode (threshold-aware matching), which has no released
counterpart.

Usage: python bench/bench_region.py [--n 100000] [--seed 0]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from scipy.optimize import linear_sum_assignment

from regbench.metrics.region import BoxSet, medrega_rows, standard_counts

NAMES = ["liver", "left kidney", "right kidney", "spleen", "pancreas", "heart", "left lung", "right lung"]


def synthetic(n: int, seed: int) -> tuple[list[BoxSet], list[BoxSet]]:
    """~5 reference boxes per sample over 2-3 named objects; predictions jittered, some dropped or added."""
    rng = np.random.default_rng(seed)
    preds, refs = [], []
    for _ in range(n):
        m = int(rng.integers(3, 8))
        lo = rng.random((m, 2)) * 0.7
        size = 0.05 + rng.random((m, 2)) * 0.25
        ref = np.concatenate([lo, lo + size], axis=1)
        names = list(rng.choice(NAMES[:4] if rng.random() < 0.5 else NAMES[4:], size=m))
        keep = rng.random(m) > 0.15
        pred = ref[keep] + rng.normal(0, 0.02, (int(keep.sum()), 4))
        pred_names = [
            f"<ref>{name}</ref><box>" if rng.random() > 0.1 else "<ref>kidney</ref><box>"
            for name, k in zip(names, keep, strict=True)
            if k
        ]
        if rng.random() < 0.3:
            extra_lo = rng.random(2) * 0.7
            pred = np.vstack([pred, np.concatenate([extra_lo, extra_lo + 0.1])])
            pred_names.append("<ref>spleen</ref><box>")
        # the released code works on the 0-999 integer grid
        preds.append(BoxSet(np.clip(np.round(pred * 999), 0, 999) / 999, pred_names))
        refs.append(BoxSet(np.round(ref * 999) / 999, names))
    return preds, refs


def reference_loop(preds: list[BoxSet], refs: list[BoxSet]) -> dict[str, float]:
    """Per sample, like the released multi-region evaluator: torch box IoU, scipy assignment, python counts."""
    import torch

    def box_area(boxes: torch.Tensor) -> torch.Tensor:
        return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])

    def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        lt = torch.max(a[:, None, :2], b[:, :2])
        rb = torch.min(a[:, None, 2:], b[:, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[:, :, 0] * wh[:, :, 1]
        return inter / (box_area(a)[:, None] + box_area(b) - inter)

    totals = {key: [] for key in ("rp", "rr", "rf", "op", "or", "of", "ap", "ar", "af")}
    iou_total = gt_total = 0.0
    for pred, ref in zip(preds, refs, strict=True):
        pred_names = {i: name for i, name in enumerate(pred.names)}
        gt_names = {i: name for i, name in enumerate(ref.names)}
        g, p = len(ref.names), len(pred.names)
        gt_total += g
        counts = {"r": 0, "o": 0, "a": 0}
        if p:
            iou = box_iou(torch.tensor(pred.boxes), torch.tensor(ref.boxes))
            rows, cols = linear_sum_assignment(1 - iou.numpy())
            for r, c in zip(rows, cols, strict=True):
                value = iou[r, c].item()
                iou_total += value
                pn, gn = pred_names[r], gt_names[c]
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


def ours(preds: list[BoxSet], refs: list[BoxSet]) -> dict[str, float]:
    rows = medrega_rows(preds, refs, ["multi_object_multi_region"] * len(preds))
    n = len(rows)
    mean = lambda key: sum(r[key] for r in rows) / n  # noqa: E731
    out = {}
    for prefix, level in (("r", "region"), ("o", "object"), ("a", "alignment")):
        out[prefix + "p"] = mean(f"{level}_precision")
        out[prefix + "r"] = mean(f"{level}_recall")
        out[prefix + "f"] = mean(f"{level}_f1")
    out["iou"] = sum(r["iou_sum"] for r in rows) / sum(r["iou_den"] for r in rows)
    return out


def timed(function, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    preds, refs = synthetic(args.n, args.seed)
    boxes = sum(len(r.names) for r in refs) / args.n
    print(
        f"{args.n} samples, {boxes:.1f} reference boxes each on average; {platform.processor() or platform.machine()}"
    )
    expected, slow = timed(reference_loop, preds, refs)
    got, fast = timed(ours, preds, refs)
    for key, value in expected.items():
        assert abs(got[key] - value) < 1e-9, (key, got[key], value)
    print(f"reference loop  {slow:7.2f} s  {args.n / slow:10,.0f} samples/s")
    print(f"regbench medrega {fast:6.2f} s  {args.n / fast:10,.0f} samples/s   {slow / fast:.1f}x faster")
    print("all 10 aggregates equal (region, object, alignment P/R/F1 and pooled IoU)")
    _, standard = timed(lambda: standard_counts(preds, refs, threshold=0.5))
    print(f"regbench standard counts {standard:.2f} s  {args.n / standard:,.0f} samples/s")


if __name__ == "__main__":
    main()
