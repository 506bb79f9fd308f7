"""Box geometry: IoU (2D, 3D), M3D's enclosing-box IoU, GIoU, l1, against hand values and torch."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from regbench.metrics import geometry
from regbench.metrics.geometry import enclosing_iou_matrix, giou_matrix, iou_matrix, l1_matrix

A = [0.0, 0.0, 0.4, 0.4]
B = [0.5, 0.5, 0.9, 0.9]
A_SHIFT = [0.1, 0.0, 0.5, 0.4]  # IoU with A: 0.3 * 0.4 / (0.16 + 0.16 - 0.12) = 0.6


def test_iou_2d_by_hand() -> None:
    iou = iou_matrix(np.array([A, A_SHIFT, B]), np.array([A, B]))
    # A_SHIFT vs B: overlap x [0.5, 0.5] -> 0
    assert iou == pytest.approx(np.array([[1.0, 0.0], [0.6, 0.0], [0.0, 1.0]]))


def test_iou_3d_by_hand() -> None:
    cube = [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]
    half = [0.0, 0.0, 0.0, 0.5, 0.5, 0.25]  # half the cube's depth: IoU 0.5
    apart = [0.6, 0.6, 0.6, 1.0, 1.0, 1.0]
    assert iou_matrix(np.array([half, apart]), np.array([cube]))[:, 0] == pytest.approx([0.5, 0.0])


def test_m3d_test_vector_true_iou_and_enclosing_iou() -> None:
    # research/seeds-002-003.md: A = [0,0,0,.6,.6,.6], B = [.17,.17,.17,.77,.77,.77]
    # inter = 0.43^3 = 0.079507; union = 2 * 0.216 - 0.079507 = 0.352493 -> 0.2256
    # hull = 0.77^3 = 0.456533 -> 0.079507 / (0.456533 + 1e-6) = 0.1742
    a = np.array([[0, 0, 0, 0.6, 0.6, 0.6]])
    b = np.array([[0.17, 0.17, 0.17, 0.77, 0.77, 0.77]])
    assert iou_matrix(a, b)[0, 0] == pytest.approx(0.43**3 / (2 * 0.216 - 0.43**3))
    assert iou_matrix(a, b)[0, 0] == pytest.approx(0.2256, abs=1e-4)
    assert enclosing_iou_matrix(a, b)[0, 0] == pytest.approx(0.1742, abs=1e-4)


def test_enclosing_iou_equals_true_iou_when_one_box_contains_the_other() -> None:
    inner, outer = np.array([[0.1, 0.1, 0.3, 0.3]]), np.array([[0.0, 0.0, 0.4, 0.4]])
    assert enclosing_iou_matrix(inner, outer)[0, 0] == pytest.approx(iou_matrix(inner, outer)[0, 0], abs=1e-5)


def test_degenerate_box_has_iou_zero_even_with_itself() -> None:
    flat = np.array([[0.2, 0.2, 0.2, 0.5]])
    assert iou_matrix(flat, flat)[0, 0] == 0.0
    assert iou_matrix(flat, np.array([A]))[0, 0] == 0.0


def test_giou_and_l1_by_hand() -> None:
    # A and B: no overlap; hull [0, 0, 0.9, 0.9] = 0.81, union 0.32: GIoU = 0 - (0.81 - 0.32) / 0.81
    assert giou_matrix(np.array([A]), np.array([B]))[0, 0] == pytest.approx(-(0.81 - 0.32) / 0.81)
    assert giou_matrix(np.array([A]), np.array([A]))[0, 0] == pytest.approx(1.0)
    # overlapping: hull [0, 0, 0.5, 0.4] = 0.2 = union, so GIoU = IoU = 0.6
    assert giou_matrix(np.array([A]), np.array([A_SHIFT]))[0, 0] == pytest.approx(0.6)
    assert l1_matrix(np.array([A]), np.array([A_SHIFT]))[0, 0] == pytest.approx(0.05)


def torchvision_box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """torchvision.ops.box_iou's formula (the one MedRegA's evaluator uses)."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.max(a[:, None, :2], b[:, :2])
    rb = torch.min(a[:, None, 2:], b[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    return inter / (area_a[:, None] + area_b - inter)


def random_boxes(rng: np.random.Generator, shape: tuple[int, ...], dims: int = 4) -> np.ndarray:
    lo = rng.random((*shape, dims // 2)) * 0.7
    return np.concatenate([lo, lo + 0.02 + rng.random((*shape, dims // 2)) * 0.3], axis=-1)


def test_iou_is_bit_identical_to_torchvisions_formula() -> None:
    rng = np.random.default_rng(0)
    pred, ref = random_boxes(rng, (40,)), random_boxes(rng, (30,))
    expected = torchvision_box_iou(torch.tensor(pred), torch.tensor(ref)).numpy()
    assert np.array_equal(iou_matrix(pred, ref), expected)


@pytest.mark.parametrize("function", [iou_matrix, enclosing_iou_matrix, giou_matrix, l1_matrix])
@pytest.mark.parametrize("dims", [4, 6])
def test_a_batch_equals_each_sample_alone(function, dims: int) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(dims)
    pred, ref = random_boxes(rng, (5, 3), dims), random_boxes(rng, (5, 4), dims)
    batch = function(pred, ref)
    assert batch.shape == (5, 3, 4)
    for b in range(5):
        assert np.array_equal(batch[b], function(pred[b], ref[b]))


def test_iou_matches_a_per_pair_loop_in_3d() -> None:
    rng = np.random.default_rng(7)
    pred, ref = random_boxes(rng, (6,), 6), random_boxes(rng, (5,), 6)
    for i, p in enumerate(pred):
        for j, r in enumerate(ref):
            inter = np.prod(np.clip(np.minimum(p[3:], r[3:]) - np.maximum(p[:3], r[:3]), 0, None))
            union = np.prod(p[3:] - p[:3]) + np.prod(r[3:] - r[:3]) - inter
            assert iou_matrix(pred, ref)[i, j] == pytest.approx(inter / union)


def test_mismatched_dimensions_are_refused() -> None:
    with pytest.raises(ValueError, match="2D"):
        iou_matrix(np.zeros((1, 4)), np.zeros((1, 6)))


def test_docstring_examples() -> None:
    assert doctest.testmod(geometry).failed == 0
