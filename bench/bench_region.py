"""Region scoring throughput: regbench's medrega mode against a per-sample loop like the released evaluator.

Both sides get the same inputs: for each sample, the model's output string (``Parsed.raw``) and
the reference objects of the canonical sample. The reference loop is written the way MedRegA's
released multi-region evaluator works (github.com/xmed-lab/MedRegA, src/eval/regt2r): per
sample, its regex over the output and ``ast.literal_eval`` of each ``[[...]]`` list, coordinates
/ 999 (the released per-axis image scaling cancels in IoU and is left out), a torch IoU matrix
(torchvision's box_iou formula), one ``scipy.optimize.linear_sum_assignment(1 - IoU)``, matches
at IoU >= 0.5, names aligned by substring, "precision" = C / references, "recall" = C /
predictions, per-sample F1, IoU pooled over the split. regbench runs its plugin as ``regbench
score`` does: ``prepare`` with the split (before any output exists: the reference boxes are read
into columns there), then its reading of all outputs (the ``medrega_released`` batch reader),
``stats_batch`` over all samples and ``finalize``. The loop reads its
references beforehand too (each sample's boxes and names into lists), so both sides are timed in the
same two steps: reading the references, then scoring. The script asserts that all ten aggregates
agree, then reports samples per second and the ratios: scoring against scoring, and both steps
against both. Further rows time parts of regbench's path, and the standard mode (threshold-aware
matching, no released counterpart).

With numba installed (``pip install 'regbench[fast]'``) regbench's rows are shown twice, on the
numpy path and with the compiled kernels, and the first-call cost of the kernels is measured in
fresh processes (compiling into an empty cache, then loading numba's cache).

Usage: python bench/bench_region.py [--n 100000] [--seed 0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import ast
import gc
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from regbench import accel
from regbench.metrics.region import BoxColumns, RegionAligned, released_columns, released_counts
from regbench.parsing import BOX_FORMATS
from regbench.parsing.readings import ReadItems
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


GroundTruth = list[tuple[list[list[float]], dict[int, str]]]


def reference_ground_truth(items: Items) -> GroundTruth:
    """The loop's counterpart of regbench's ``prepare``: each sample's reference boxes and box names, read
    out of the sample objects before any output is looked at (the released evaluator reads them from its
    answer file's ``gt`` field per sample)."""
    out = []
    for _, sample in items:
        boxes_g, gt_name = [], {}
        for region in sample.objects:
            for box in region.boxes:
                gt_name[len(boxes_g)] = region.name.lower()
                boxes_g.append(box)
        out.append((boxes_g, gt_name))
    return out


def reference_loop(items: Items, ground_truth: GroundTruth) -> dict[str, float]:
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
    for (parsed, _), (boxes_g, gt_name) in zip(items, ground_truth, strict=True):
        boxes_p, pred_name = [], {}
        for text, lists in RELEASED_PATTERN.findall(parsed.raw):
            for box in ast.literal_eval(lists):
                pred_name[len(boxes_p)] = text.lower()
                boxes_p.append([v / 999 for v in box])
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


def prepared(items: Items, mode: str = "medrega") -> RegionAligned:
    """The plugin, prepared with the split as ``regbench score`` does before any output is read."""
    plugin = RegionAligned(RegionAligned.Options(mode=mode, subtask="multi_object_multi_region"))
    plugin.prepare([sample for _, sample in items])
    return plugin


def read_by(plugin: RegionAligned, items: Items) -> Sequence[tuple[Parsed, Sample]]:
    """The items as ``plugin`` reads them: its own reading of every output at once (``Metric.reads``), as
    the runner gives it (a detection task expects boxes), or the items as they are."""
    if plugin.reads is None:
        return items
    outputs = [parsed.raw for parsed, _ in items]
    reading = BOX_FORMATS.get(plugin.reads).read_batch(outputs, expect_boxes=True)
    return ReadItems(reading, [sample for _, sample in items])


def scored(plugin: RegionAligned, items: Items) -> dict[str, float]:
    """The scoring step of ``regbench score``: the plugin's reading, stats_batch over every sample, finalize."""
    return plugin.finalize(plugin.stats_batch(read_by(plugin, items)))


def ours(items: Items) -> dict[str, float]:
    """The plugin as ``regbench score`` runs it: prepare, stats_batch over every sample, finalize."""
    return short_names(scored(prepared(items), items))


def outputs_to_columns(items: Items) -> BoxColumns:
    """Output strings to flat box columns (the released reading, as the plugin takes it)."""
    return released_columns(read_by(prepared([]), items))


def references_to_columns(items: Items) -> BoxColumns:
    """The reference objects (pydantic models) to flat box columns, without an index."""
    return BoxColumns.from_regions([sample.objects for _, sample in items], 4, str.lower)


def references_from_index(plugin: RegionAligned, items: Items) -> BoxColumns:
    """The reference columns as scoring gets them from the prepared index (samples looked up by identity)."""
    index = plugin._index
    assert index is not None
    rows = index.rows([sample for _, sample in items])
    assert rows is not None
    return index.read.columns(str.lower, rows)


def counts_only(pred: BoxColumns, ref: BoxColumns) -> dict[str, np.ndarray]:
    """The matching engine alone: columns already built, counts out."""
    return released_counts(pred, ref, np.full(len(ref), 0.5))


def with_boxes(items: Items) -> Items:
    """The items with the medrega box format parser's objects (what the standard mode reads)."""
    from regbench.parsing import parse_output

    return [(parse_output(p.raw, box_format="medrega"), s) for p, s in items]


def standard(items: Items) -> dict[str, float]:
    """regbench's default mode (threshold-aware matching, exact names), prepared and scored."""
    return scored(prepared(items, "standard"), items)


def timed(function, *args):  # type: ignore[no-untyped-def]
    gc.collect()  # garbage left by earlier steps is not this step's cost (the same for both sides)
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


FIRST_CALL = """
import sys, time
sys.path.insert(0, {bench!r})
from bench_region import ours, synthetic
from regbench import accel
accel.MIN_SIZE = 0  # the kernels for 100 samples: what is timed is loading (or compiling) them
items = synthetic(100, 0)
start = time.perf_counter()
ours(items)
print(time.perf_counter() - start)
"""


def first_call(cache: str | None) -> float:
    """Seconds of the first scoring call in a fresh process: numba's import, plus compiling (``cache`` an empty
    directory) or loading the machine code numba keeps on disk (``cache`` None: its usual place)."""
    env = dict(os.environ, **({"NUMBA_CACHE_DIR": cache} if cache else {}))
    code = FIRST_CALL.format(bench=os.path.dirname(os.path.abspath(__file__)))
    return float(subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True).stdout)


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
    ground_truth, read = timed(reference_ground_truth, items)
    expected, slow = timed(reference_loop, items, ground_truth)
    whole = read + slow
    for label, seconds in (("scoring", slow), ("reading the references", read), ("both", whole)):
        print(f"{'reference loop (released-style): ' + label:58s}{seconds:7.3f} s  {args.n / seconds:10,.0f} samples/s")

    def row(label: str, seconds: float, note: str = "", against: float = slow) -> None:
        ratio = f"{against / seconds:6.1f}x" if against else ""
        print(f"{label:58s}{seconds:7.3f} s  {args.n / seconds:10,.0f} samples/s  {ratio}  {note}")

    def best(function, *args_):  # type: ignore[no-untyped-def]
        return min(timed(function, *args_)[1] for _ in range(repeat))

    repeat = args.repeat
    paths = [("numpy", True)] + ([("numba", False)] if accel.available() else [])
    if not accel.available():
        print("(numba is not installed: numpy path only; pip install 'regbench[fast]' for the compiled kernels)")
    parsed = with_boxes(items)
    for path, disabled in paths:
        with accel.numba_disabled(disabled):
            if not disabled:
                accel.MIN_SIZE, size = 0, accel.MIN_SIZE  # 100 samples take the kernels: loading them is timed
                _, compile_s = timed(ours, items[:100])
                accel.MIN_SIZE = size
                print(f"numba first call in this process: {compile_s:.2f} s (import + compile or load from cache)")
            runs = []
            for _ in range(repeat):
                plugin, setup = timed(prepared, items)
                found, scoring = timed(scored, plugin, items)
                runs.append((short_names(found), setup, scoring))
            for key, value in expected.items():
                assert abs(runs[0][0][key] - value) < 1e-9, (path, key, runs[0][0][key], value)
            setup, scoring = min(r[1] for r in runs), min(r[2] for r in runs)
            both = min(r[1] + r[2] for r in runs)
            row(f"regbench medrega ({path}): scoring (read, stats, finalize)", scoring, "vs the loop's scoring")
            print("  all 10 aggregates equal (region, object, alignment P/R/F1 and pooled IoU)")
            plugin = prepared(items)
            outputs = best(outputs_to_columns, items)
            references = best(references_from_index, plugin, items)
            engine = best(counts_only, outputs_to_columns(items), references_from_index(plugin, items))
            row("  of which output strings -> columns", outputs)
            row("  of which reference columns from the index", references)
            row("  of which the matching engine", engine)
            records = plugin.stats_batch(read_by(plugin, items))
            row("  of which finalize (records -> aggregates)", best(plugin.finalize, records))
            row(f"regbench medrega ({path}): prepare (reference index)", setup, "vs the loop's reading", read)
            row("  of which reference objects -> columns", best(references_to_columns, items), "", read)
            row(f"regbench medrega ({path}): prepare + scoring", both, "vs the loop's both", whole)
            row(f"regbench standard ({path}): prepare + scoring", best(standard, parsed), "(boxes pre-parsed)", whole)
    if accel.available():
        with tempfile.TemporaryDirectory() as empty:
            cold = first_call(empty)
        print(f"numba first call in a fresh process: {cold:.2f} s with an empty cache (compiling), ", end="")
        print(f"{first_call(None):.2f} s with numba's cache (import + load)")


if __name__ == "__main__":
    main()
