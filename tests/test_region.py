"""Region metrics: geometry, matching, region_aligned in its three modes, grounding, box regression.

Expected numbers are computed by hand in the comments (METRICS.md definitions; MedRegA's
released evaluator rules from research/anchors-seed-code.md §1; M3D's test vector).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from regbench.metrics import METRICS, MetricContext
from regbench.metrics.geometry import enclosing_iou_matrix, giou_matrix, iou_matrix, l1_matrix
from regbench.metrics.matching import assign_batch, threshold_weights
from regbench.metrics.region import derive_subtask
from regbench.parsing import parse_output
from regbench.types import Parsed, Region, Sample


def plugin(name: str = "region_aligned", **options: object):  # type: ignore[no-untyped-def]
    cls = METRICS.get(name)
    return cls(cls.Options(**options), MetricContext(task="t", family="detection"))


def ref(*objects: tuple[str, list[list[float]]]) -> Sample:
    return Sample(id="s", objects=[Region(name=n, boxes=b) for n, b in objects])


def pred(*objects: tuple[str, list[list[float]]], raw: str = "") -> Parsed:
    return Parsed(raw=raw, objects=[Region(name=n, boxes=b) for n, b in objects])


A = [0.0, 0.0, 0.4, 0.4]
B = [0.5, 0.5, 0.9, 0.9]
A_SHIFT = [0.1, 0.0, 0.5, 0.4]  # IoU with A: 0.3 * 0.4 / (0.16 + 0.16 - 0.12) = 0.6


# ---------------------------------------------------------------- geometry


def test_iou_2d_by_hand() -> None:
    iou = iou_matrix(np.array([A, A_SHIFT, B]), np.array([A]))
    assert iou[:, 0] == pytest.approx([1.0, 0.6, 0.0])


def test_m3d_test_vector_true_iou_and_enclosing_iou() -> None:
    a = np.array([[0, 0, 0, 0.6, 0.6, 0.6]])
    b = np.array([[0.17, 0.17, 0.17, 0.77, 0.77, 0.77]])
    assert iou_matrix(a, b)[0, 0] == pytest.approx(0.2256, abs=1e-4)
    assert enclosing_iou_matrix(a, b)[0, 0] == pytest.approx(0.1742, abs=1e-4)


def test_degenerate_box_has_iou_zero_even_with_itself() -> None:
    flat = np.array([[0.2, 0.2, 0.2, 0.5]])
    assert iou_matrix(flat, flat)[0, 0] == 0.0


def test_giou_and_l1_by_hand() -> None:
    # A and B: no overlap; hull [0,0,0.9,0.9] = 0.81, union 0.32: GIoU = 0 - (0.81 - 0.32) / 0.81
    assert giou_matrix(np.array([A]), np.array([B]))[0, 0] == pytest.approx(-(0.81 - 0.32) / 0.81)
    assert giou_matrix(np.array([A]), np.array([A]))[0, 0] == pytest.approx(1.0)
    assert l1_matrix(np.array([A]), np.array([A_SHIFT]))[0, 0] == pytest.approx(0.05)


# ---------------------------------------------------------------- matching


def test_threshold_aware_matching_avoids_the_trap() -> None:
    iou = np.array([[[1.0, 0.5], [0.5, 0.05]]])
    hits_of = lambda mask: int((mask & (iou >= 0.5)).sum())  # noqa: E731
    assert hits_of(assign_batch(iou)) == 1  # maximising total IoU: diagonal, 1.05 > 1.0
    assert hits_of(assign_batch(threshold_weights(iou, 0.5))) == 2


@pytest.mark.parametrize(("n", "m"), [(1, 1), (2, 3), (4, 4), (5, 3), (3, 7), (7, 7)])
def test_batched_assignment_reaches_scipys_optimum(n: int, m: int) -> None:
    weights = np.random.default_rng(n * 10 + m).random((50, n, m))
    mask = assign_batch(weights)
    assert (mask.sum(axis=(1, 2)) == min(n, m)).all()
    assert (mask.sum(axis=1) <= 1).all() and (mask.sum(axis=2) <= 1).all()
    for b in range(50):
        rows, cols = linear_sum_assignment(weights[b], maximize=True)
        assert (weights[b] * mask[b]).sum() == pytest.approx(weights[b, rows, cols].sum())


# ---------------------------------------------------------------- region_aligned, standard


def test_perfect_prediction_scores_one() -> None:
    values = plugin().stats(pred(("liver", [A]), ("kidney", [B])), ref(("Liver", [A]), ("kidney.", [B])))
    for key in ("region_f1", "object_f1", "alignment_f1", "iou"):
        assert values[key] == pytest.approx(1.0), key


def test_empty_output_and_empty_reference_edge_rules() -> None:
    empty = plugin().stats(pred(), ref(("liver", [A])))
    assert (empty["region_precision"], empty["region_recall"], empty["region_f1"], empty["iou"]) == (0, 0, 0, 0)
    both = plugin().stats(pred(), ref())
    assert (both["region_precision"], both["region_recall"], both["region_f1"]) == (1.0, 1.0, 1.0)
    false_alarm = plugin().stats(pred(("liver", [A])), ref())
    assert (false_alarm["region_precision"], false_alarm["region_recall"]) == (0.0, 0.0)


def test_duplicates_count_once() -> None:
    values = plugin().stats(pred(("liver", [A, A])), ref(("liver", [A])))
    # one hit: P = 1/2, R = 1/1, F1 = 2/3; IoU = 1.0 / max(2, 1)
    assert values["region_precision"] == 0.5 and values["region_recall"] == 1.0
    assert values["region_f1"] == pytest.approx(2 / 3) and values["iou"] == pytest.approx(0.5)


def test_wrong_names_right_boxes() -> None:
    values = plugin().stats(pred(("spleen", [A]), ("liver", [B])), ref(("liver", [A]), ("spleen", [B])))
    assert values["region_f1"] == 1.0 and values["alignment_f1"] == 0.0
    assert values["object_f1"] == 1.0  # the same two names were named


def test_right_names_wrong_boxes() -> None:
    values = plugin().stats(pred(("liver", [B])), ref(("liver", [A])))
    assert values["object_f1"] == 1.0 and values["region_f1"] == 0.0 and values["alignment_f1"] == 0.0


def test_threshold_and_accuracy_on_single_region() -> None:
    sample = ref(("liver", [A]))
    assert plugin().stats(pred(("liver", [A_SHIFT])), sample)["accuracy"] == 1.0  # IoU 0.6 >= 0.5
    assert plugin(iou_threshold=0.7).stats(pred(("liver", [A_SHIFT])), sample)["accuracy"] == 0.0
    assert "accuracy" not in plugin().stats(pred(("a", [A])), ref(("a", [A]), ("b", [B])))


def test_trap_through_the_plugin() -> None:
    # Boxes built so the IoU matrix is [[1.0, 0.5], [0.5, small]]: the standard matching finds 2 hits.
    r1, r2 = [0.0, 0.0, 0.4, 0.4], [0.0, 0.0, 0.2, 0.4]  # IoU(r1, r2) = 0.5
    p1, p2 = r2, r1  # p1 = r2 (IoU 0.5 with r1, 1.0 with r2)
    values = plugin().stats(pred(("x", [p1, p2])), ref(("x", [r1, r2])))
    assert values["region_precision"] == 1.0 and values["region_recall"] == 1.0


def test_synonyms_map_predicted_names() -> None:
    values = plugin(synonyms={"cardiac silhouette": "heart"}).stats(
        pred(("Cardiac silhouette", [A])), ref(("heart", [A]))
    )
    assert values["alignment_f1"] == 1.0


def test_3d_boxes() -> None:
    a = [0.0, 0.0, 0.0, 0.6, 0.6, 0.6]
    b = [0.17, 0.17, 0.17, 0.77, 0.77, 0.77]
    standard = plugin(iou_threshold=0.2).stats(pred(("tumor", [b])), ref(("tumor", [a])))
    assert standard["accuracy"] == 1.0 and standard["iou"] == pytest.approx(0.2256, abs=1e-4)
    m3d = plugin(mode="m3d").stats(pred(("tumor", [b])), ref(("tumor", [a])))
    assert m3d["accuracy"] == 0.0 and m3d["iou"] == pytest.approx(0.1742, abs=1e-4)  # 0.1742 is not > 0.2


def test_subtask_derivation() -> None:
    assert derive_subtask(ref(("a", [A])).objects) == "single_object_single_region"
    assert derive_subtask(ref(("a", [A, B])).objects) == "single_object_multi_region"
    assert derive_subtask(ref(("a", [A]), ("b", [B])).objects) == "multi_object_single_region"
    assert derive_subtask(ref(("a", [A, B]), ("b", [B])).objects) == "multi_object_multi_region"


def test_finalize_is_the_mean_of_samples() -> None:
    metric = plugin()
    stats = [metric.stats(pred(("liver", [A])), ref(("liver", [A]))), metric.stats(pred(), ref(("liver", [A])))]
    assert metric.finalize(stats)["region_f1"] == 0.5


# ---------------------------------------------------------------- region_aligned, medrega (released code)


def grid(box: list[float]) -> str:
    return "[" + ", ".join(str(round(v * 999)) for v in box) + "]"


def test_medrega_mode_by_hand() -> None:
    metric = plugin(mode="medrega")
    r = ref(("kidney", [A]), ("liver", [B]))  # multi-object single-region: threshold 0.5, mm evaluator
    # Three predicted boxes, two hits; names: text before each [[ ]] (tags included), substring-aligned.
    far = grid([0.9, 0, 1, 0.1])
    raw = f"<ref>left kidney</ref><box>[{grid(A)}]</box> and <ref>spleen</ref><box>[{grid(B)}, {far}]</box>"
    values = metric.stats(Parsed(raw=raw), r)
    # C = 2 hits, G = 2 references, P = 3 predictions: "precision" = C/G = 1, "recall" = C/P = 2/3
    assert values["region_precision"] == 1.0 and values["region_recall"] == pytest.approx(2 / 3)
    # "<ref>left kidney</ref><box>" contains "kidney": aligned; "... <ref>spleen</ref><box>" vs "liver": not
    assert values["alignment_precision"] == 0.5 and values["alignment_recall"] == pytest.approx(1 / 3)
    assert values["object_precision"] == 0.5  # A = 1 aligned assigned pair / G


def test_medrega_mode_parses_only_double_brackets() -> None:
    metric = plugin(mode="medrega")
    r = ref(("liver", [A]), ("kidney", [B]))
    for raw in (f"<box>{grid(A)}</box>", "<box>[[ 0, 0, 400, 400]]</box>", "<box>[[0.0, 0.0, 0.4, 0.4]]</box>"):
        values = metric.stats(Parsed(raw=raw), r)
        assert values["n_pred"] == 0 and values["region_f1"] == 0.0


def test_medrega_single_object_multi_region_uses_075_and_pooled_iou() -> None:
    metric = plugin(mode="medrega")
    r = ref(("kidney", [A, B]))
    # A_SHIFT has IoU 0.6 with A: a hit at 0.5, not at the released 0.75
    first = metric.stats(Parsed(raw=f"kidney [[{grid(A_SHIFT)[1:-1]}], [{grid(B)[1:-1]}]]"), r)
    assert first["region_precision"] == 0.5 and first["object_precision"] is None
    second = metric.stats(Parsed(raw=f"[[{grid(B)[1:-1]}]]"), r)
    # pooled IoU: (0.6 + 1.0 + 1.0) / 3 assigned pairs, not the mean of per-sample means
    assert metric.finalize([first, second])["iou"] == pytest.approx(2.6 / 3, abs=5e-3)  # per-sample mean: 0.9


def test_medrega_single_region_is_strictly_greater() -> None:
    metric = plugin(mode="medrega")
    half = [0.0, 0.0, 0.2, 0.4]  # IoU with A exactly 0.5
    values = metric.stats(Parsed(raw=f"[[{grid(half)[1:-1]}]]"), ref(("liver", [A])))
    assert values["ss_iou"] == pytest.approx(0.5, abs=2e-3)
    standard = plugin().stats(pred(("liver", [half])), ref(("liver", [A])))
    assert standard["accuracy"] == 1.0
    exact = metric.stats(Parsed(raw="[[0, 0, 999, 999]]"), ref(("x", [[0.0, 0.0, 1.0, 1.0]])))
    assert exact["accuracy"] == 1.0


def test_signature_names_the_mode() -> None:
    assert "mode:medrega" in plugin(mode="medrega").signature("region_f1")
    assert "pr:swapped" in plugin(mode="medrega").signature("region_f1")
    assert "iou_def:enclosing" in plugin(mode="m3d").signature("iou")
    assert plugin(iou_threshold=0.3).signature("iou") != plugin().signature("iou")


# ---------------------------------------------------------------- grounding, box regression


def test_grounding_first_box() -> None:
    metric = plugin("grounding")
    values = metric.stats(pred(("", [A_SHIFT, B])), ref(("opacity", [A])))
    assert values["miou"] == pytest.approx(0.6) and values["acc_iou50"] == 1.0 and values["hit_rate"] == 1.0
    none = metric.stats(pred(), ref(("opacity", [A])))
    assert none["miou"] == 0.0 and none["acc_iou50"] == 0.0


def test_box_regression_by_hand() -> None:
    values = plugin("box_regression").stats(pred(("", [A_SHIFT])), ref(("x", [A])))
    # l1 = (0.1 + 0 + 0.1 + 0) / 4; GIoU = IoU 0.6 - (hull 0.2 - union 0.2) / 0.2
    assert values["l1"] == pytest.approx(0.05) and values["giou"] == pytest.approx(0.6)
    assert values["giou_loss"] == pytest.approx(0.4)
    assert plugin("box_regression").stats(pred(), ref(("x", [A])))["l1"] is None


# ---------------------------------------------------------------- parsers


@pytest.mark.parametrize(
    ("fmt", "text", "expected"),
    [
        ("medrega", "<ref>liver</ref><box>[[100, 200, 300, 400]]</box>", [("liver", [0.1, 0.2, 0.3, 0.4])]),
        ("medrega", "<ref>liver</ref><ref>[100, 200, 300, 400]</ref>", [("liver", [0.1, 0.2, 0.3, 0.4])]),
        ("qwen_vl", "<ref>liver</ref><box>(100,200),(300,400)</box>", [("liver", [0.1, 0.2, 0.3, 0.4])]),
        ("m4cxr", "[10, 20, 30, 40].", [("", [0.1, 0.2, 0.3, 0.4])]),
        ("normalized", "liver [0.1, 0.2, 0.3, 0.4]", [("liver", [0.1, 0.2, 0.3, 0.4])]),
        ("m3d", "[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]", [("", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6])]),
        ("vividmed", "<p>opacity</p> [0.1, 0.2, 0.3, 0.4] is seen", [("opacity", [0.1, 0.2, 0.3, 0.4])]),
        ("medrega", "<ref>x</ref><box>[[300, 400, 100, 200]]</box>", [("x", [0.1, 0.2, 0.3, 0.4])]),  # swapped
        ("normalized", "x [1.5, -0.2, 0.5, 0.5]", [("x", [0.5, 0.0, 1.0, 0.5])]),  # clipped, reordered
    ],
)
def test_box_formats(fmt: str, text: str, expected: list[tuple[str, list[float]]]) -> None:
    parsed = parse_output(text, box_format=fmt, expect_boxes=True)
    assert parsed.ok
    got = [
        (o.name, [round(v * 999) / 999 if fmt in ("medrega", "qwen_vl") else v for v in b])
        for o in parsed.objects
        for b in o.boxes
    ]
    for (name, box), (want_name, want_box) in zip(got, expected, strict=True):
        assert name == want_name and box == pytest.approx(want_box, abs=1.5e-3)


def test_qwen25_needs_the_image_size() -> None:
    text = '[{"bbox_2d": [20, 40, 100, 200], "label": "liver"}]'
    sized = parse_output(text, box_format="qwen25_vl", sample=Sample(id="s", width=200, height=400))
    assert sized.objects[0].boxes[0] == pytest.approx([0.1, 0.1, 0.5, 0.5])
    unsized = parse_output(text, box_format="qwen25_vl", sample=Sample(id="s"), expect_boxes=True)
    assert not unsized.ok and "width" in (unsized.error or "")


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ('[{"bbox_2d": [1, 2, 3, 4]}]', "qwen25_vl"),
        ("<box>(1,2),(3,4)</box>", "qwen_vl"),
        ("<p>nodule</p> [0.1, 0.2, 0.3, 0.4]", "vividmed"),
        ("<ref>a</ref><box>[[1, 2, 3, 4]]</box>", "medrega"),
        ("[0.1, 0.2, 0.3, 0.4]", "normalized"),
        ("[0.1, 0.2, 0.3, 0.4, 0.5, 0.6]", "m3d"),
        ("effusion [10, 20, 30, 40]", "m4cxr"),
    ],
)
def test_auto_detection_says_what_it_chose(text: str, fmt: str) -> None:
    assert parse_output(text, box_format="auto").box_format == fmt


def test_refusals_and_failures() -> None:
    for refusal in ("Not present.", "Sorry, I cannot find the liver.", "No such region is found."):
        parsed = parse_output(refusal, box_format="auto", expect_boxes=True)
        assert parsed.ok and parsed.refusal and parsed.objects == []
    for garbage in ("the liver is big", "[[1, 2]]", "<box>(1,2)</box>"):
        parsed = parse_output(garbage, box_format="auto", expect_boxes=True)
        assert not parsed.ok and parsed.error


def test_vividmed_rejects_nested_phrases() -> None:
    parsed = parse_output("<p>a <p>b</p></p> [0.1, 0.2, 0.3, 0.4]", box_format="vividmed", expect_boxes=True)
    assert not parsed.ok and "nested" in (parsed.error or "")


def test_grounded_report_split() -> None:
    text = (
        "<ref>right lung</ref><box>[[102, 106, 481, 910]]</box>: Clear. "
        "<ref>heart</ref><box>[[390, 470, 640, 810]]</box>：Normal size."
    )
    parsed = parse_output(text, box_format="medrega", expect_boxes=True)
    assert parsed.text == "Clear. Normal size."
    assert [o.name for o in parsed.objects] == ["right lung", "heart"]
