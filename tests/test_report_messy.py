"""Reports on a messy leaderboard: four models on three tasks, with a model that never writes a
box (metrics missing, one not a finite number), exact ties, one model scored with IoU threshold
0.3 (its own signature group) and a different bootstrap seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from regbench.report.collect import Collection, collect
from regbench.report.leaderboard import SCHEMA_FILE, build_leaderboard
from regbench.signature import Signature

MODELS = ["boxless", "model-a", "model-b", "model-c-iou03"]

# plugin, key, per-model value (None: not in results.json; "null": written as null)
DET = "region_aligned"
DETECTION: dict[str, tuple[str, dict[str, Any]]] = {
    **{
        f"object_{m}": (DET, {"boxless": 0.40, "model-a": 0.70, "model-b": 0.60, "model-c-iou03": 0.75})
        for m in ("precision", "recall", "f1")
    },
    **{
        f"region_{m}": (DET, {"boxless": 0.0, "model-a": 0.45, "model-b": 0.35, "model-c-iou03": 0.55})
        for m in ("precision", "recall", "f1")
    },
    **{
        f"alignment_{m}": (DET, {"model-a": 0.40, "model-b": 0.30, "model-c-iou03": 0.50})
        for m in ("precision", "recall", "f1")
    },
    "iou": (DET, {"model-a": 0.50, "model-b": 0.40, "model-c-iou03": 0.30}),
    "accuracy": (DET, {"model-a": 0.42, "model-b": 0.42, "model-c-iou03": 0.51}),
}
REPORT: dict[str, tuple[str, dict[str, Any]]] = {
    "bleu1": ("nlg", {"boxless": 0.30, "model-a": 0.33, "model-b": 0.31, "model-c-iou03": 0.29}),
    "bleu4": ("nlg", {"boxless": 0.08, "model-a": 0.10, "model-b": 0.11, "model-c-iou03": 0.09}),
    "meteor": ("nlg", {"boxless": 0.12, "model-a": 0.14, "model-b": 0.15, "model-c-iou03": 0.13}),
    "rouge_l": ("nlg", {"boxless": 0.26, "model-a": 0.28, "model-b": 0.27, "model-c-iou03": 0.25}),
    "cider": ("nlg", {"boxless": 0.31, "model-a": 0.45, "model-b": 0.41, "model-c-iou03": 0.38}),
    "bertscore_f1": ("bertscore", {"boxless": 0.52, "model-a": 0.55, "model-b": 0.56, "model-c-iou03": 0.50}),
    "chexbert_f1_micro14": ("chexbert", {"boxless": 0.50, "model-a": 0.58, "model-b": 0.60, "model-c-iou03": 0.55}),
    "chexbert_f1_macro14": ("chexbert", {"boxless": 0.30, "model-a": 0.39, "model-b": 0.40, "model-c-iou03": 0.35}),
    "chexbert_f1_micro5": ("chexbert", {"boxless": 0.52, "model-a": 0.62, "model-b": 0.61, "model-c-iou03": 0.57}),
    "chexbert_f1_macro5": ("chexbert", {"boxless": 0.41, "model-a": 0.50, "model-b": 0.49, "model-c-iou03": 0.45}),
    "chexbert_f1_example14": ("chexbert", {"boxless": 0.44, "model-a": 0.50, "model-b": 0.54, "model-c-iou03": 0.47}),
    "chexbert_f1_atelectasis": ("chexbert", {"boxless": 0.20, "model-a": 0.31, "model-b": 0.33, "model-c-iou03": 0.25}),
    "radgraph_f1": ("radgraph", {"boxless": 0.18, "model-a": 0.22, "model-b": 0.21, "model-c-iou03": 0.20}),
    "radcliq_v1": ("radcliq", {"boxless": "null", "model-a": 1.02, "model-b": 0.98, "model-c-iou03": 1.10}),
}
# model-a and model-b tie on token_f1 and bleu1, and overall (mean rank 1.5 each)
VQA: dict[str, tuple[str, dict[str, Any]]] = {
    "closed_accuracy": ("vqa", {"boxless": 0.50, "model-a": 0.80, "model-b": 0.70, "model-c-iou03": 0.60}),
    "open_recall": ("vqa", {"boxless": 0.50, "model-a": 0.70, "model-b": 0.80, "model-c-iou03": 0.60}),
    "open_accuracy": ("vqa", {"boxless": 0.40, "model-a": 0.55, "model-b": 0.65, "model-c-iou03": 0.45}),
    "token_f1": ("vqa", {"boxless": 0.40, "model-a": 0.60, "model-b": 0.60, "model-c-iou03": 0.50}),
    "exact_match": ("vqa", {"boxless": 0.40, "model-a": 0.65, "model-b": 0.55, "model-c-iou03": 0.45}),
    "bleu1": ("vqa", {"boxless": 0.20, "model-a": 0.30, "model-b": 0.30, "model-c-iou03": 0.20}),
}
TASKS = {
    "grounding_det": ("detection", "ct", DETECTION),
    "mimic_report": ("report", "chest_xray", REPORT),
    "slake_vqa": ("vqa", "mixed", VQA),
}
LOWER_IS_BETTER = {"radcliq_v1"}
RAW = {"cider", "radcliq_v1"}


def _signature(plugin: str, key: str, model: str) -> str:
    parts: list[tuple[str, str | None]] = [("mode", "standard")]
    if plugin == DET:
        parts += [("iou_threshold", "0.3" if model == "model-c-iou03" else "0.5"), ("agg", "sample_mean")]
    seed = 7 if model == "model-c-iou03" else 1234  # a different bootstrap seed does not split a group
    return Signature.for_plugin(plugin, key, parts, version="0.3.0").with_bootstrap(1000, seed).format()


def _detection_samples(model: str) -> list[dict[str, Any]]:
    """Four samples; boxless writes no box (so it has no per-sample IoU)."""
    boxes = [] if model == "boxless" else [{"boxes": [[0.1, 0.1, 0.6, 0.7]]}]
    return [
        {
            "id": f"s{i}",
            "output": "no box here" if model == "boxless" else "liver [[100, 100, 600, 700]]",
            "parsed": {"text": "liver", "objects": boxes},
            "reference": {"answer": "liver", "objects": [{"boxes": [[0.1, 0.1, 0.5, 0.6]]}]},
            "scores": {} if model == "boxless" else {"iou": 0.2 * i},
        }
        for i in range(4)
    ]


def write_messy_runs(root: Path) -> Path:
    """results.json (and, for the detection task, samples.jsonl) of 4 models x 3 tasks under ``root``."""
    for task, (family, modality, table) in TASKS.items():
        for model in MODELS:
            metrics: dict[str, Any] = {}
            ci95: dict[str, list[float]] = {}
            for key, (_, values) in table.items():
                value = values.get(model)
                if value is None:
                    continue
                metrics[key] = None if value == "null" else value
                if value != "null":
                    ci95[key] = [round(value - 0.05, 4), round(value + 0.05, 4)]
            run = root / model / task
            run.mkdir(parents=True)
            results = {
                "task": task,
                "model": model,
                "family": family,
                "language": "en",
                "modality": modality,
                "n_samples": 4,
                "n_parse_failures": 4 if model == "boxless" and family == "detection" else 0,
                "metrics": metrics,
                "ci95": ci95,
                "higher_is_better": {k: k not in LOWER_IS_BETTER for k in metrics},
                "signatures": {k: _signature(table[k][0], k, model) for k in metrics},
                "plugins": {k: table[k][0] for k in metrics},
                "bootstrap": {"trials": 1000, "seed": 7 if model == "model-c-iou03" else 1234},
                "regbench_version": "0.3.0",
                "schema_version": 1,
            }
            (run / "results.json").write_text(json.dumps(results), encoding="utf-8")
            if family == "detection":
                samples = "".join(json.dumps(r) + "\n" for r in _detection_samples(model))
                (run / "samples.jsonl").write_text(samples, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> Collection:
    return collect(write_messy_runs(tmp_path_factory.mktemp("messy")))


# -- defects -------------------------------------------------------------------------------------


def test_metric_bars_pair_each_interval_with_its_own_model(messy: Collection, tmp_path: Path, monkeypatch) -> None:
    """boxless has no IoU: the intervals used to be zipped with every run, so model-b got model-a's
    interval (a negative error bar: matplotlib raised) and model-c-iou03 boxless's (none)."""
    pytest.importorskip("matplotlib")
    from matplotlib.axes import Axes

    from regbench.report.plots import metric_bars

    calls: list[tuple[Axes, list[float], Any]] = []
    bar = Axes.bar

    def recording_bar(ax: Axes, x: Any, height: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((ax, list(height), kwargs.get("yerr")))
        return bar(ax, x, height, *args, **kwargs)

    monkeypatch.setattr(Axes, "bar", recording_bar)
    path = metric_bars(messy, "grounding_det", tmp_path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    drawn = {ax.get_title(): ([t.get_text() for t in ax.get_xticklabels()], h, e) for ax, h, e in calls}
    models, values, (below, above) = drawn["iou"]
    assert models == ["model-a", "model-b", "model-c-iou03"] and values == [0.50, 0.40, 0.30]
    assert below == pytest.approx([0.05, 0.05, 0.05]) and above == pytest.approx([0.05, 0.05, 0.05])


def test_a_model_ranked_only_in_other_signature_groups_is_listed_unranked(messy: Collection) -> None:
    """model-c-iou03 is scored with IoU threshold 0.3 on every detection metric, so it is in no first
    group: it used to vanish from the family's standing instead of being listed as unranked."""
    board = build_leaderboard(messy)
    for name, family in board["families"].items():
        listed = [o["model"] for o in family["overall"]] + family["unranked"]
        ran = {m for t in family["tasks"] for m in board["tasks"][t]["models"]}
        assert sorted(listed) == sorted(ran), name
    detection = board["families"]["detection"]
    assert detection["unranked"] == ["model-c-iou03"]
    assert (
        "scored differently in 11 (IoU threshold 0.3 instead of 0.5)" in detection["unranked_reasons"]["model-c-iou03"]
    )
    assert [o["model"] for o in detection["overall"]] == ["model-a", "model-b", "boxless"]


def test_messy_leaderboard_validates_ties_share_ranks_and_seeds_do_not_split(messy: Collection) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    board = build_leaderboard(messy)
    jsonschema.validate(board, json.loads(SCHEMA_FILE.read_text()))
    vqa = board["families"]["vqa"]["overall"]
    assert [(o["model"], o["rank"]) for o in vqa] == [
        ("model-a", 1),
        ("model-b", 1),
        ("model-c-iou03", 3),
        ("boxless", 4),
    ]
    # model-c-iou03's intervals used another bootstrap seed: the same group as everyone else
    assert all(len(groups) == 1 for groups in board["tasks"]["slake_vqa"]["rankings"].values())
    assert board["tasks"]["slake_vqa"]["rankings"]["token_f1"][0]["ranks"]["model-a"] == 1.5
    iou = board["tasks"]["grounding_det"]["rankings"]["iou"]
    assert [g["order"] for g in iou] == [["model-a", "model-b"], ["model-c-iou03"]]
    assert "difference" not in iou[0] and iou[1]["difference"] == "IoU threshold 0.3 instead of 0.5"
    missing = {t: board["tasks"][t]["models"]["boxless"]["missing"] for t in board["tasks"]}
    assert missing["mimic_report"] == {"radcliq_v1": "null in results.json, not a finite number"}
    assert missing["grounding_det"]["iou"] == "no value in its results.json" and missing["slake_vqa"] == {}
