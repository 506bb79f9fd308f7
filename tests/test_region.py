"""region_aligned (standard, medrega, m3d), grounding and box_regression: hand-computed values of every key.

Expected numbers are worked out in the comments from METRICS.md's definitions, MedRegA's
released evaluator rules (research/anchors-seed-code.md §1) and M3D's test vector. The
medrega mode is also compared, sample by sample, with the released rules written out per
sample on top of scipy's linear_sum_assignment.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from regbench.metrics import METRICS, MetricContext
from regbench.metrics.base import mean_of_sample_scores
from regbench.metrics.geometry import reaches
from regbench.metrics.region import (
    M3DRegion,
    MedregaRegion,
    RegionAligned,
    StandardRegion,
    derive_subtask,
    precision_recall_f1,
)
from regbench.parsing import BOX_FORMATS, parse_output
from regbench.parsing.medrega_released import released_boxes
from regbench.types import Parsed, Region, Sample
from tests.conftest import assert_weighted_equals_finalize

A = [0.0, 0.0, 0.4, 0.4]
B = [0.5, 0.5, 0.9, 0.9]
A_SHIFT = [0.1, 0.0, 0.5, 0.4]  # IoU with A: 0.3 * 0.4 / (0.16 + 0.16 - 0.12) = 0.6
FAR = [0.9, 0.0, 1.0, 0.1]  # IoU 0 with A and B


def plugin(name: str = "region_aligned", **options: object):  # type: ignore[no-untyped-def]
    cls = METRICS.get(name)
    return cls(cls.Options(**options), MetricContext(task="t", family="detection"))


def ref(*objects: tuple[str, list[list[float]]]) -> Sample:
    return Sample(id="s", objects=[Region(name=n, boxes=b) for n, b in objects])


def pred(*objects: tuple[str, list[list[float]]], raw: str = "") -> Parsed:
    return Parsed(raw=raw, objects=[Region(name=n, boxes=b) for n, b in objects])


def released(raw: str) -> Parsed:
    """An output as medrega mode reads it: MedRegA's released parser (the ``medrega_released`` reading)."""
    return BOX_FORMATS.get("medrega_released").read(raw)  # type: ignore[no-any-return]


def score(metric, parsed: Parsed, sample: Sample) -> dict[str, float | None]:  # type: ignore[no-untyped-def]
    return metric.sample_scores(metric.stats(parsed, sample))


def grid(box: list[float]) -> str:
    """A 0-1 box on MedRegA's 0-999 grid, single brackets."""
    return "[" + ", ".join(str(round(v * 999)) for v in box) + "]"


# ---------------------------------------------------------------- standard mode, every key


def test_every_standard_key_by_hand() -> None:
    sample = ref(("liver", [A]), ("kidney", [B]))
    output = pred(("liver", [A_SHIFT]), ("spleen", [B]), ("kidney", [FAR]))
    values = score(plugin(), output, sample)
    # N = 3, M = 2. Region: hits A_SHIFT-A (0.6) and B-B (1.0): P = 2/3, R = 1, F1 = 0.8
    assert (values["region_precision"], values["region_recall"], values["region_f1"]) == pytest.approx((2 / 3, 1, 0.8))
    # Object: names {liver, spleen, kidney} vs {liver, kidney}: 2 in both -> P = 2/3, R = 1, F1 = 0.8
    assert (values["object_precision"], values["object_recall"], values["object_f1"]) == pytest.approx((2 / 3, 1, 0.8))
    # Alignment: only liver-liver is a same-name hit (kidney's box misses): P = 1/3, R = 1/2, F1 = 0.4
    assert (values["alignment_precision"], values["alignment_recall"], values["alignment_f1"]) == pytest.approx(
        (1 / 3, 1 / 2, 0.4)
    )
    # IoU: (0.6 + 1.0) / max(3, 2)
    assert values["iou"] == pytest.approx(1.6 / 3)
    assert values["accuracy"] is None  # not a single-object single-region sample


def test_perfect_prediction_scores_one() -> None:
    values = score(plugin(), pred(("liver", [A]), ("kidney", [B])), ref(("Liver", [A]), ("kidney.", [B])))
    for key in ("region_f1", "object_f1", "alignment_f1", "iou"):
        assert values[key] == pytest.approx(1.0), key


def test_empty_output_and_empty_reference_edge_rules() -> None:
    empty = score(plugin(), pred(), ref(("liver", [A])))
    assert [empty[k] for k in ("region_precision", "region_recall", "region_f1", "iou", "accuracy")] == [0, 0, 0, 0, 0]
    both = score(plugin(), pred(), ref())
    assert [both[k] for k in ("region_precision", "region_recall", "region_f1", "object_f1", "iou")] == [1, 1, 1, 1, 1]
    assert both["accuracy"] is None  # nothing to find
    false_alarm = score(plugin(), pred(("liver", [A])), ref())
    assert (false_alarm["region_precision"], false_alarm["region_recall"], false_alarm["region_f1"]) == (0, 0, 0)


def test_unparseable_output_is_no_box() -> None:
    parsed = parse_output("the liver is somewhere on the left", box_format="medrega", expect_boxes=True)
    assert not parsed.ok
    values = score(plugin(), parsed, ref(("liver", [A])))
    assert values["region_recall"] == 0 and values["iou"] == 0 and values["accuracy"] == 0


def test_duplicates_count_once() -> None:
    values = score(plugin(), pred(("liver", [A, A])), ref(("liver", [A])))
    # one hit: P = 1/2, R = 1/1, F1 = 2/3; IoU = 1.0 / max(2, 1); the name counts once
    assert (values["region_precision"], values["region_recall"]) == (0.5, 1.0)
    assert values["region_f1"] == pytest.approx(2 / 3) and values["iou"] == pytest.approx(0.5)
    assert values["object_precision"] == 1.0


def test_wrong_names_with_right_boxes() -> None:
    values = score(plugin(), pred(("spleen", [A]), ("liver", [B])), ref(("liver", [A]), ("spleen", [B])))
    assert values["region_f1"] == 1.0 and values["alignment_f1"] == 0.0
    assert values["object_f1"] == 1.0  # the same two names were named


def test_right_names_with_wrong_boxes() -> None:
    values = score(plugin(), pred(("liver", [B])), ref(("liver", [A])))
    assert values["object_f1"] == 1.0 and values["region_f1"] == 0.0 and values["alignment_f1"] == 0.0


# Boxes whose IoU matrix is [[1, 0.6], [0.6, 0.4286]]: r1 = p1; r2 is r1's left 60%, p2 its top 60%.
R1, R2 = [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.3, 0.5]
P1, P2 = R1, [0.0, 0.0, 0.5, 0.3]  # IoU(p2, r2) = 0.09 / (0.15 + 0.15 - 0.09) = 0.4286


def test_the_trap_through_the_plugin() -> None:
    # Maximising total IoU picks the diagonal (1.4286 > 1.2): one hit. The standard matching finds two.
    values = score(plugin(), pred(("x", [P1, P2])), ref(("x", [R1, R2])))
    assert values["region_precision"] == 1.0 and values["region_recall"] == 1.0
    assert values["iou"] == pytest.approx(0.6)  # the assignment that gives the hits: (0.6 + 0.6) / 2
    raw = f"<ref>x</ref><box>[{grid(P1)}, {grid(P2)}]</box>"
    medrega = plugin(mode="medrega", subtask="multi_object_multi_region")
    assert score(medrega, released(raw), ref(("x", [R1, R2])))["region_precision"] == 0.5  # MedRegA's code: one hit


def test_threshold_and_accuracy_on_single_region() -> None:
    sample = ref(("liver", [A]))
    assert score(plugin(), pred(("liver", [A_SHIFT])), sample)["accuracy"] == 1.0  # IoU 0.6 >= 0.5
    assert score(plugin(iou_threshold=0.7), pred(("liver", [A_SHIFT])), sample)["accuracy"] == 0.0
    # accuracy takes the best predicted box
    assert score(plugin(), pred(("liver", [FAR, A_SHIFT])), sample)["accuracy"] == 1.0


def test_synonyms_map_predicted_names() -> None:
    values = score(
        plugin(synonyms={"Cardiac silhouette": "heart"}), pred(("cardiac  silhouette.", [A])), ref(("heart", [A]))
    )
    assert values["alignment_f1"] == 1.0 and values["object_f1"] == 1.0


def test_chinese_names() -> None:
    values = score(plugin(), pred(("胰腺癌", [A]), ("肝脏", [B])), ref(("胰腺癌", [A]), ("脾脏", [B])))
    assert values["alignment_precision"] == 0.5 and values["object_recall"] == 0.5


def test_3d_boxes_standard_and_m3d() -> None:
    a = [0.0, 0.0, 0.0, 0.6, 0.6, 0.6]
    b = [0.17, 0.17, 0.17, 0.77, 0.77, 0.77]
    standard = score(plugin(iou_threshold=0.2), pred(("tumor", [b])), ref(("tumor", [a])))
    assert standard["accuracy"] == 1.0 and standard["iou"] == pytest.approx(0.2256, abs=1e-4)
    m3d = score(plugin(mode="m3d"), pred(("tumor", [b])), ref(("tumor", [a])))
    assert m3d["accuracy"] == 0.0 and m3d["iou"] == pytest.approx(0.1742, abs=1e-4)  # 0.1742 is not > 0.2
    assert score(plugin(), pred(("tumor", [b])), ref(("tumor", [a])))["accuracy"] == 0.0  # 0.2256 < 0.5


def test_m3d_hit_is_strict() -> None:
    cube = [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]
    inside = [0.0, 0.0, 0.0, 0.5, 0.5, 0.1]  # contained: enclosing IoU = true IoU = 0.2 (minus eps)
    assert score(plugin(mode="m3d", iou_threshold=0.19), pred(("t", [inside])), ref(("t", [cube])))["accuracy"] == 1.0
    assert score(plugin(mode="m3d"), pred(("t", [inside])), ref(("t", [cube])))["accuracy"] == 0.0


def test_2d_boxes_against_a_3d_reference_are_not_matched() -> None:
    values = score(plugin(), pred(("t", [A])), ref(("t", [[0, 0, 0, 0.5, 0.5, 0.5]])))
    assert values["region_precision"] == 0.0 and values["region_recall"] == 0.0


def test_subtask_derivation_and_override() -> None:
    assert derive_subtask(ref(("a", [A])).objects) == "single_object_single_region"
    assert derive_subtask(ref(("a", [A, B])).objects) == "single_object_multi_region"
    assert derive_subtask(ref(("a", [A]), ("A.", [B])).objects) == "single_object_multi_region"
    assert derive_subtask(ref(("a", [A]), ("b", [B])).objects) == "multi_object_single_region"
    assert derive_subtask(ref(("a", [A, B]), ("b", [B])).objects) == "multi_object_multi_region"
    stats = plugin(subtask="multi_object_multi_region").stats(pred(("a", [A])), ref(("a", [A])))
    assert stats["subtask"] == "multi_object_multi_region" and "accuracy" not in stats


def test_batch_equals_one_sample_at_a_time_and_finalize_is_the_mean() -> None:
    items = [
        (pred(("liver", [A_SHIFT])), ref(("liver", [A]))),
        (pred(), ref(("liver", [A]))),
        (pred(("x", [P1, P2])), ref(("x", [R1, R2]))),
        (pred(("t", [[0.1, 0.1, 0.1, 0.5, 0.5, 0.5]])), ref(("t", [[0, 0, 0, 0.5, 0.5, 0.5]]))),  # 3D in a 2D batch
        (pred(("liver", [A]), ("kidney", [FAR])), ref(("liver", [A]), ("kidney", [B]))),
    ]
    for mode in ("standard", "m3d"):
        metric = plugin(mode=mode)
        batch = metric.stats_batch(items)
        assert batch == [metric.stats(p, s) for p, s in items]
        expected = mean_of_sample_scores([metric.sample_scores(s) for s in batch])
        assert metric.finalize(batch) == pytest.approx(expected)
        assert metric.finalize(batch + batch[:2]) != pytest.approx(expected)  # duplicates (bootstrap) count


# ---------------------------------------------------------------- medrega mode (released code), by hand


def test_medrega_multi_object_by_hand() -> None:
    metric = plugin(mode="medrega")
    sample = ref(("kidney", [A]), ("liver", [B]))  # multi-object single-region: threshold 0.5
    raw = f"<ref>left kidney</ref><box>[{grid(A)}]</box> and <ref>spleen</ref><box>[{grid(B)}, {grid(FAR)}]</box>"
    values = score(metric, released(raw), sample)
    # C = 2 hits, G = 2 references, P = 3 predictions: "precision" = C/G = 1, "recall" = C/P = 2/3, F1 = 0.8
    assert (values["region_precision"], values["region_recall"], values["region_f1"]) == pytest.approx((1, 2 / 3, 0.8))
    # names = all the text before each [[ ]]: "<ref>left kidney</ref><box>" contains "kidney" (aligned);
    # "</box> and <ref>spleen</ref><box>" and "liver" are not. A = CA = 1: 1/2, 1/3, F1 0.4
    for level in ("object", "alignment"):
        got = (values[f"{level}_precision"], values[f"{level}_recall"], values[f"{level}_f1"])
        assert got == pytest.approx((0.5, 1 / 3, 0.4)), level
    assert values["iou"] == pytest.approx(1.0, abs=3e-3)  # (IoU + IoU) / G, boxes on the 999 grid


def test_medrega_zero_iou_pairs_are_scipys_choice() -> None:
    # One box that overlaps nothing: linear_sum_assignment(1 - IoU) still pairs it, with the first
    # reference among equals (scipy: column 0), and the released "object" level counts that pair.
    assert linear_sum_assignment(np.ones((1, 2)))[1].tolist() == [0]
    metric = plugin(mode="medrega")
    sample = ref(("liver", [A]), ("kidney", [B]))
    liver = score(metric, released(f"<ref>liver</ref><box>[{grid(FAR)}]</box>"), sample)
    kidney = score(metric, released(f"<ref>kidney</ref><box>[{grid(FAR)}]</box>"), sample)
    assert liver["region_f1"] == 0 and kidney["region_f1"] == 0
    assert (liver["object_precision"], liver["object_recall"], liver["object_f1"]) == pytest.approx((0.5, 1, 2 / 3))
    assert kidney["object_f1"] == 0  # paired with liver's box, so never aligned
    # Two boxes, no overlap at all: scipy pairs them in order, so swapped names never align.
    swapped = f"<ref>kidney</ref><box>[{grid(FAR)}]</box><ref>liver</ref><box>[{grid(FAR)}]</box>"
    assert score(metric, released(swapped), sample)["object_f1"] == 0


def test_medrega_parses_only_double_brackets() -> None:
    metric = plugin(mode="medrega")
    sample = ref(("liver", [A]), ("kidney", [B]))
    for raw in (f"<box>{grid(A)}</box>", "<box>[[ 0, 0, 400, 400]]</box>", "<box>[[0.0, 0.0, 0.4, 0.4]]</box>", ""):
        stats = metric.stats(released(raw), sample)
        assert stats["n_pred"] == 0
        assert metric.sample_scores(stats)["region_f1"] == 0.0


def test_medrega_parses_a_long_rambling_output_in_linear_time() -> None:
    # The released pattern retries at every position of a bracket-free run: ~1 s for this text,
    # ~20 s at four times the length. The linear pattern takes well under a millisecond.
    text = "the lungs are clear " * 800 + "<ref>liver</ref><box>[[1, 2, 3, 4]]</box> [0.1]"
    boxes, names = released_boxes(text)
    assert names == [text[: text.index("[[")]] and boxes == [[1 / 999, 2 / 999, 3 / 999, 4 / 999]]


def test_medrega_single_object_multi_region_uses_075_and_pooled_iou() -> None:
    metric = plugin(mode="medrega")
    sample = ref(("kidney", [A, B]))
    # A_SHIFT has IoU 0.6 with A: a hit at 0.5, not at the released 0.75. C = 1, G = P = 2.
    first = metric.stats(released(f"kidney [{grid(A_SHIFT)}, {grid(B)}]"), sample)
    values = metric.sample_scores(first)
    assert (values["region_precision"], values["region_recall"]) == (0.5, 0.5)
    assert values["object_precision"] is None and values["alignment_f1"] is None  # names unused there
    second = metric.stats(released(f"[{grid(B)}]"), sample)
    # pooled IoU: (0.6 + 1.0 + 1.0) / 3 assigned pairs, not the mean of per-sample means (0.9)
    assert metric.finalize([first, second])["iou"] == pytest.approx(2.6 / 3, abs=5e-3)
    assert plugin(mode="medrega", iou_threshold=0.5).sample_scores(
        plugin(mode="medrega", iou_threshold=0.5).stats(released(f"[{grid(A_SHIFT)}, {grid(B)}]"), sample)
    )["region_precision"] == pytest.approx(1.0)


def test_medrega_single_region_is_strict_and_takes_the_first_box() -> None:
    metric = plugin(mode="medrega")
    half = ref(("liver", [[0.0, 0.0, 1.0, 202 / 999]]))  # [[0, 0, 999, 101]] has IoU exactly 0.5 with it
    exact = metric.stats(released("[[0, 0, 999, 101]]"), half)
    assert exact["ss_iou"] == 0.5 and exact["accuracy"] == 0.0  # the released evaluator: IoU > 0.5
    assert score(plugin(), pred(("liver", [[0, 0, 1.0, 101 / 999]])), half)["accuracy"] == 1.0  # standard: >=
    sample = ref(("liver", [A]))
    # as many predictions as references: the first box counts; more predictions: the best one
    assert metric.stats(released(f"[{grid(FAR)}]"), sample)["ss_iou"] == 0.0
    assert metric.stats(released(f"[{grid(FAR)}, {grid(A)}]"), sample)["ss_iou"] == pytest.approx(1.0, abs=3e-3)
    values = score(metric, released(f"[{grid(A_SHIFT)}]"), sample)
    assert values["accuracy"] == 1.0 and values["iou"] == pytest.approx(0.6, abs=3e-3)
    assert values["region_f1"] is None


def test_medrega_finalize_mixing_subtasks_weights_each_evaluator_by_samples() -> None:
    metric = plugin(mode="medrega")
    single = metric.stats(released(f"[{grid(A)}]"), ref(("liver", [A])))  # ss_iou ~ 1
    multi = metric.stats(released(f"[{grid(FAR)}]"), ref(("liver", [A]), ("kidney", [B])))  # pooled 0 / 2
    assert metric.finalize([single, multi])["iou"] == pytest.approx(0.5, abs=2e-3)
    assert metric.finalize([single, single, multi])["iou"] == pytest.approx(2 / 3, abs=2e-3)
    assert metric.finalize([single, multi])["accuracy"] == 1.0  # only the single-region sample has one


def released_rules(raw: str, sample: Sample, subtask: str) -> dict[str, float]:
    """MedRegA's multi-box evaluators, one sample at a time, as research/anchors-seed-code.md §1 describes them."""
    groups = re.findall(r"([^\[\]]*)(\[\[\d+,\s*\d+,\s*\d+,\s*\d+\](?:,\s*\[\d+,\s*\d+,\s*\d+,\s*\d+\])*\])", raw)
    boxes, names = [], []
    for text, lists in groups:
        for box in re.findall(r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\]", lists):
            boxes.append([int(v) / 999 for v in box])
            names.append(text.lower())
    gt = [(b, r.name.lower()) for r in sample.objects for b in r.boxes]
    g, p = len(gt), len(boxes)
    threshold = 0.75 if subtask == "single_object_multi_region" else 0.5
    c = a = ca = 0
    iou_sum = 0.0
    if p and g:
        pb, gb = np.array(boxes), np.array([b for b, _ in gt])
        lo, hi = np.maximum(pb[:, None, :2], gb[None, :, :2]), np.minimum(pb[:, None, 2:], gb[None, :, 2:])
        inter = np.clip(hi - lo, 0, None).prod(axis=2)
        area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
        iou = inter / (area(pb)[:, None] + area(gb)[None, :] - inter)
        for r, col in zip(*linear_sum_assignment(1 - iou), strict=True):
            iou_sum += iou[r, col]
            aligned = names[r] == "" or names[r] in gt[col][1] or gt[col][1] in names[r]
            c += iou[r, col] >= threshold
            a += aligned
            ca += iou[r, col] >= threshold and aligned
    out = {}
    for level, count in (("region", c), ("object", a), ("alignment", ca)):
        pre, rec = (count / g if g else 0.0), (count / p if p else 0.0)
        out.update(
            {
                f"{level}_precision": pre,
                f"{level}_recall": rec,
                f"{level}_f1": 2 * pre * rec / (pre + rec) if pre + rec else 0.0,
            }
        )
    out["iou_sum"] = iou_sum
    return out


def test_medrega_mode_equals_the_released_rules_on_random_samples() -> None:
    rng = np.random.default_rng(5)
    names = ["liver", "left kidney", "kidney", "spleen"]
    items, subtasks = [], []
    for _ in range(300):
        m = int(rng.integers(1, 6))
        lo = rng.integers(0, 700, (m, 2))
        gt = np.concatenate([lo, lo + rng.integers(20, 300, (m, 2))], axis=1)
        k = int(rng.integers(0, 7))
        picks = rng.integers(0, m, k)
        boxes = np.clip(gt[picks] + rng.integers(-40, 40, (k, 4)) * (rng.random((k, 1)) < 0.7), 0, 999)
        boxes[rng.random(k) < 0.2] = [950, 950, 990, 990]  # boxes that overlap nothing: ties for scipy
        raw = " ".join(f"<ref>{names[rng.integers(0, 4)]}</ref><box>[[{', '.join(map(str, b))}]]</box>" for b in boxes)
        sample = Sample(
            id="s", objects=[Region(name=names[rng.integers(0, 4)], boxes=[(b / 999).tolist()]) for b in gt]
        )
        subtask = ["single_object_multi_region", "multi_object_single_region", "multi_object_multi_region"][_ % 3]
        items.append((released(raw), sample))
        subtasks.append(subtask)
    for subtask in set(subtasks):
        metric = plugin(mode="medrega", subtask=subtask)
        chosen = [item for item, s in zip(items, subtasks, strict=True) if s == subtask]
        for stats, (parsed, sample) in zip(metric.stats_batch(chosen), chosen, strict=True):
            expected = released_rules(parsed.raw, sample, subtask)
            got = metric.sample_scores(stats)
            assert stats["iou_sum"] == pytest.approx(expected["iou_sum"])
            keys = ["region_precision", "region_recall", "region_f1"]
            if subtask != "single_object_multi_region":
                keys += [f"{lv}_{k}" for lv in ("object", "alignment") for k in ("precision", "recall", "f1")]
            for key in keys:
                assert got[key] == pytest.approx(expected[key]), (key, parsed.raw)


def test_signature_names_the_mode() -> None:
    assert "mode:medrega" in plugin(mode="medrega").signature("region_f1").format()
    assert "pr:swapped" in plugin(mode="medrega").signature("region_f1").format()
    assert "iou_def:enclosing" in plugin(mode="m3d").signature("iou").format()
    assert plugin(iou_threshold=0.3).signature("iou") != plugin().signature("iou")
    assert plugin(subtask="multi_object_multi_region").signature("iou") != plugin().signature("iou")
    assert plugin(synonyms={"a": "b"}).signature("iou") != plugin().signature("iou")


def test_one_registered_plugin_builds_the_metric_of_its_mode() -> None:
    for mode, cls in (("standard", StandardRegion), ("medrega", MedregaRegion), ("m3d", M3DRegion)):
        metric = plugin(mode=mode)
        assert type(metric) is cls and isinstance(metric, RegionAligned) and metric.name == "region_aligned"
    assert type(RegionAligned()) is StandardRegion
    assert (plugin(mode="medrega").reads, plugin(mode="medrega").aggregation) == ("medrega_released", "corpus")


def test_precision_recall_f1_gives_records_and_columns_the_same_numbers() -> None:
    rng = np.random.default_rng(7)
    n_pred, n_ref = rng.integers(0, 4, 500), rng.integers(0, 4, 500)
    matched = np.minimum(rng.integers(0, 4, 500), np.minimum(n_pred, n_ref))
    for both_empty in (1.0, None):
        columns = precision_recall_f1(matched * 1.0, n_pred * 1.0, n_ref * 1.0, both_empty=both_empty)
        for i in range(500):
            one = precision_recall_f1(int(matched[i]), int(n_pred[i]), int(n_ref[i]), both_empty=both_empty)
            assert one == tuple(float(c[i]) for c in columns)  # bit for bit
    assert precision_recall_f1(0, 0, 0) == (1.0, 1.0, 1.0)  # nothing to find, nothing found
    assert precision_recall_f1(0, 0, 0, both_empty=None) == (0.0, 0.0, 0.0)  # MedRegA's code
    assert precision_recall_f1(0, 0, 2) == (0.0, 0.0, 0.0) and precision_recall_f1(0, 3, 0) == (0.0, 0.0, 0.0)
    assert precision_recall_f1(1, 2, 4) == pytest.approx((0.5, 0.25, 1 / 3))


def test_options_are_checked() -> None:
    cls = METRICS.get("region_aligned")
    for bad in ({"mode": "paper"}, {"iou_threshold": 1.5}, {"subtask": "single"}, {"threshold": 0.5}):
        with pytest.raises(ValueError):
            cls.Options(**bad)


# ---------------------------------------------------------------- grounding, box regression


def test_grounding_first_box() -> None:
    metric = plugin("grounding")
    values = score(metric, pred(("", [A_SHIFT, B])), ref(("opacity", [A])))
    assert values["miou"] == pytest.approx(0.6) and values["acc_iou50"] == 1.0 and values["hit_rate"] == 1.0
    second_box_only = score(metric, pred(("", [B, A])), ref(("opacity", [A])))  # only the first box counts
    assert second_box_only["miou"] == 0.0 and second_box_only["acc_iou50"] == 0.0
    none = score(metric, pred(), ref(("opacity", [A])))
    assert none["miou"] == 0.0 and none["acc_iou50"] == 0.0 and none["hit_rate"] == 0.0


def test_grounding_on_m4cxr_output() -> None:
    parsed = parse_output("The consolidation is at [10, 0, 50, 40].", box_format="m4cxr", expect_boxes=True)
    values = score(plugin("grounding"), parsed, ref(("consolidation", [A])))
    assert values["miou"] == pytest.approx(0.6)  # [0.1, 0, 0.5, 0.4] = A_SHIFT


def test_grounding_m3d_hit_rate_on_the_test_vector() -> None:
    a, b = [0, 0, 0, 0.6, 0.6, 0.6], [0.17, 0.17, 0.17, 0.77, 0.77, 0.77]
    assert score(plugin("grounding", hit_threshold=0.2), pred(("", [b])), ref(("t", [a])))["hit_rate"] == 1.0
    m3d = score(plugin("grounding", mode="m3d"), pred(("", [b])), ref(("t", [a])))
    assert m3d["hit_rate"] == 0.0 and m3d["miou"] == pytest.approx(0.1742, abs=1e-4)


def test_box_regression_by_hand() -> None:
    values = score(plugin("box_regression"), pred(("", [A_SHIFT])), ref(("x", [A])))
    # l1 = (0.1 + 0 + 0.1 + 0) / 4; GIoU = IoU 0.6 - (hull 0.2 - union 0.2) / 0.2
    assert values["l1"] == pytest.approx(0.05) and values["giou"] == pytest.approx(0.6)
    assert values["giou_loss"] == pytest.approx(0.4)
    apart = score(plugin("box_regression"), pred(("", [B])), ref(("x", [A])))
    assert apart["giou"] == pytest.approx(-(0.81 - 0.32) / 0.81) and apart["giou_loss"] == pytest.approx(
        1.6049, abs=1e-4
    )
    # two boxes each side, given crosswise: Hungarian pairs them back
    crossed = score(plugin("box_regression"), pred(("", [B, A])), ref(("x", [A, B])))
    assert crossed["l1"] == 0.0 and crossed["giou"] == pytest.approx(1.0)
    assert plugin("box_regression").stats(pred(), ref(("x", [A])))["l1"] is None


# ---------------------------------------------------------------- grounded report: text and regions apart


def test_grounded_report_boxes_score_as_regions() -> None:
    text = (
        "<ref>right lung</ref><box>[[102, 106, 481, 910]]</box>, "
        "<ref>left lung</ref><box>[[535, 128, 923, 889]]</box>: "
        "No focal consolidation."
    )
    parsed = parse_output(text, box_format="medrega", expect_boxes=True)
    sample = ref(("right lung", [[102 / 999, 106 / 999, 481 / 999, 910 / 999]]), ("left lung", [[0.5, 0.1, 0.9, 0.9]]))
    values = score(plugin(), parsed, sample)
    assert parsed.text == "No focal consolidation."
    assert values["region_recall"] == 1.0 and values["alignment_f1"] == 1.0  # left lung IoU ~0.88


@pytest.mark.parametrize("mode", ["medrega", "standard"])
def test_bootstrap_by_draw_counts_equals_finalize_on_each_resample(mode: str) -> None:
    metric = plugin(mode=mode)
    outputs = [f"liver [{grid(A)}]", f"[{grid(A_SHIFT)}, {grid(B)}]", "", f"kidney [{grid(FAR)}]", f"[{grid(B)}]"]
    samples = [ref(("liver", [A])), ref(("kidney", [A, B])), ref(("liver", [A]), ("kidney", [B]))]
    read = released if mode == "medrega" else (lambda out: parse_output(out, box_format="medrega"))
    # mixes the single-region, single-object multi-region and multi-object evaluators
    items = [(read(out), samples[(i * 7) % 3]) for i, out in enumerate(outputs * 4)]
    assert_weighted_equals_finalize(metric, metric.stats_batch(items), trials=50, seed=3)


def test_an_iou_of_exactly_the_threshold_is_a_hit_despite_rounding() -> None:
    # On the grid the IoU is exactly 1/2; in floating point it comes out 0.4999999999999999.
    reference = ref(("liver", [[200 / 999, 200 / 999, 300 / 999, 300 / 999]]))
    output = parse_output("<ref>liver</ref><box>[[200, 200, 400, 300]]</box>", box_format="medrega")
    values = score(plugin(), output, reference)
    assert values["iou"] == pytest.approx(0.5, abs=1e-12)
    assert (values["region_f1"], values["alignment_f1"], values["accuracy"]) == (1.0, 1.0, 1.0)
    grounding = score(plugin("grounding"), output, reference)
    assert (grounding["acc_iou50"], grounding["hit_rate"]) == (1.0, 1.0)
    # strict thresholds (M3D's > 0.2) do not count a value that only rounding lifts over them
    assert not reaches(0.2000000000000001, 0.2, strict=True) and reaches(0.2000001, 0.2, strict=True)
