"""The seed task library (tasks/seeds): every seed task names its data under ``$REGBENCH_DATA`` and renders
its prompts; one seed task per reader family is scored end to end (``regbench score``, replayed outputs)
on fixture data written in the publishers' layouts; ``regbench list tasks`` says dataset, size and presence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from regbench.cli import app
from regbench.data.status import data_status
from regbench.parsing import get_box_format
from regbench.prompts import PromptRenderer
from regbench.registry import spec_index
from regbench.spec import GroupSpec, ModelSpec, TaskSpec, load_spec
from regbench.types import Region, Sample
from tests.conftest import REPO, write_jsonl
from tests.test_readers_common import csv_text, png, write, write_json
from tests.test_readers_m3d import HEADER as REFSEG_HEADER
from tests.test_readers_m3d import npy
from tests.test_readers_ms_cxr import HEADER as MS_CXR_HEADER
from tests.test_readers_slake import qa

SEEDS = REPO / "tasks" / "seeds"
PAPERS = ("medrega", "m4cxr", "m3d", "vividmed", "xmedgpt")
MEDREGA_DETECTION = (
    "You are a helpful medical assistant. Your task is object detection. You are required to find all the regions "
    "of the given objects."
)
cli = CliRunner()


def seed_tasks() -> dict[str, Path]:
    """Seed task name -> YAML, from the spec index (so the names are the ones `--task` finds)."""
    return {name: path for name, path in spec_index("task").items() if SEEDS in path.parents}


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``$REGBENCH_DATA`` (and image cache) under tmp_path."""
    root = tmp_path / "regbench-data"
    root.mkdir()
    monkeypatch.setenv("REGBENCH_DATA", str(root))
    monkeypatch.setenv("REGBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return root


def score(task: str, outputs: dict[str, Any], tmp_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``regbench score --task TASK`` on replayed outputs: results.json and samples.jsonl."""
    predictions = write_jsonl(tmp_path / f"{task}-preds.jsonl", [{"id": k, "output": v} for k, v in outputs.items()])
    runs = tmp_path / "runs"
    result = cli.invoke(
        app, ["score", "--task", task, "-p", str(predictions), "--output", str(runs), "--bootstrap", "0"]
    )
    assert result.exit_code == 0, result.output
    directory = runs / predictions.stem / task
    samples = [json.loads(line) for line in (directory / "samples.jsonl").read_text(encoding="utf-8").splitlines()]
    return json.loads((directory / "results.json").read_text(encoding="utf-8")), samples


def user_text(sample: dict[str, Any]) -> str:
    return next(m["content"] for m in reversed(sample["prompt"]) if m["role"] == "user")


# --------------------------------------------------------------------------- the library


def test_every_seed_task_is_named_for_its_paper_grouped_and_reads_regbench_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REGBENCH_DATA", "/data")
    tasks = seed_tasks()
    assert len(tasks) >= 50
    grouped: list[str] = []
    for paper in PAPERS:
        group = load_spec(SEEDS / f"{paper}.yaml", GroupSpec)
        assert group.group == paper and len(set(group.tasks)) == len(group.tasks)
        assert all(tasks[name].parent == SEEDS / paper and name.startswith(f"{paper}_") for name in group.tasks)
        grouped += group.tasks
    assert sorted(grouped) == sorted(tasks)  # each seed task in its paper's group, once
    assert load_spec(SEEDS / "seeds.yaml", GroupSpec).tasks == ["medrega", "xmedgpt", "vividmed", "m3d", "m4cxr"]
    for name, path in tasks.items():
        task = load_spec(path, TaskSpec)
        location = task.dataset.root or task.dataset.path
        assert location is not None and location.startswith("/data/"), name
        assert "seed" in task.tags and path.read_text(encoding="utf-8").startswith("#"), name  # says its source


def test_every_seed_prompt_renders_and_medrega_instructions_appear_once() -> None:
    box = Region(name="left lung", boxes=[[0.1, 0.2, 0.3, 0.4]])
    for name, path in seed_tasks().items():
        task = load_spec(path, TaskSpec)
        model = ModelSpec(model="m", adapter="replay", path="-")
        renderer = PromptRenderer(task, model, write_box=get_box_format(task.box_format or "medrega").write)
        for question in ("Please locate <ref>liver</ref> in this CT scan.", f"{MEDREGA_DETECTION} Where?"):
            sample = Sample(
                id="s", question=question, answer="liver", objects=[box], labels=["liver"], options=["a", "b", "c", "d"]
            )
            turns = renderer.n_turns
            messages = renderer.messages(sample, turns - 1, ["first answer"] * (turns - 1), [box])
            text = "\n".join(m.content for m in messages)
            assert "{{" not in text and "{%" not in text, name
            if name.startswith("medrega_detection"):
                assert messages[-1].content.startswith(MEDREGA_DETECTION) and text.count(MEDREGA_DETECTION) == 1
    cot = load_spec(seed_tasks()["medrega_slake_en_regional_cot"], TaskSpec)
    renderer = PromptRenderer(
        cot, ModelSpec(model="m", adapter="replay", path="-"), write_box=get_box_format("medrega").write
    )
    last = renderer.messages(Sample(id="s", question="Is it normal?"), 1, ["<ref>nodule</ref>"], [box])[-1].content
    assert "The abnormal regions are: <ref>left lung</ref><box>[[100, 200, 300, 400]]</box>. Is it normal?" in last


# --------------------------------------------------------------------------- fixture data, publishers' layouts


def write_slake(data: Path) -> Path:
    root = data / "Slake1.0"
    png(root / "imgs" / "xmlab1" / "source.jpg")
    records = [
        qa(1, "Is this a chest X-ray?", "Yes", answer_type="CLOSED", modality="X-Ray"),
        qa(2, "Which organ is abnormal?", "Left lung", modality="X-Ray"),
        qa(3, "What modality is used?", "CT"),
        qa(4, "这是什么器官?", "肺", "zh"),
        qa(5, "Where is the lesion?", "Liver", img_name="xmlab9/source.jpg"),  # no image: skipped
    ]
    write_json(root / "test.json", records)
    return root


def write_iu_xray(data: Path, reports: dict[str, str]) -> Path:
    root = data / "iu_xray"
    items = []
    for report_id, report in reports.items():
        paths = [f"{report_id}/0.png", f"{report_id}/1.png"]
        for p in paths:
            png(root / "images" / p)
        items.append({"id": report_id, "report": report, "image_path": paths, "split": "test"})
    write_json(root / "annotation.json", {"train": [], "val": [], "test": items})
    return root


def chat(record_id: str, human: str, gpt: str) -> dict[str, Any]:
    conversation = [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]
    return {"id": record_id, "image": "images/ct.png", "width": 512, "height": 512, "conversations": conversation}


def write_medrega_detection(data: Path) -> Path:
    root = data / "MedRegInstruct"
    png(root / "images" / "ct.png", 512, 512)
    records = [
        chat(
            "t2r-1",
            "<image>\nPlease locate <ref>liver</ref> and <ref>spleen</ref> in this CT scan.",
            "<ref>liver</ref><box>[[100, 100, 300, 300]]</box>, <ref>spleen</ref><box>[[600, 100, 800, 300]]</box>",
        ),
        chat(  # MedRegA's demo-data layout: the instruction already in the question
            "t2r-2",
            f"{MEDREGA_DETECTION} <image>\nPlease locate <ref>left kidney</ref> and <ref>right kidney</ref>.",
            "<ref>left kidney</ref><box>[[100, 500, 300, 700]]</box>, "
            "<ref>right kidney</ref><box>[[600, 500, 800, 700]]</box>",
        ),
    ]
    text = "".join(json.dumps(r) + "\n" for r in records)
    write(root / "test" / "text2region_multi_object_single_region.jsonl", text)
    return root


def write_ms_cxr(data: Path) -> Path:
    root = data / "ms-cxr" / "1.1.0"
    image = "files/p10/p10000032/s50414267/d1.jpg"
    png(data / "mimic-cxr-jpg" / "2.0.0" / image, 10, 10)  # only the file's existence is read
    rows = [
        ["d1", "Pneumonia", "Right lower lobe opacity", image, "100", "100", "400", "400", "1000", "1000", "test"],
        ["d1", "Edema", "Mild edema", image, "500", "500", "400", "400", "1000", "1000", "test"],
        ["d1", "Edema", "Train phrase", image, "1", "1", "2", "2", "1000", "1000", "train"],
    ]
    write(root / "MS_CXR_Local_Alignment_v1.1.0.csv", csv_text(MS_CXR_HEADER, rows))
    return root


def write_m3d_refseg(data: Path) -> Path:
    root = data / "M3D"
    folder = root / "M3D_RefSeg_npy" / "s0000"
    npy(folder / "ct.npy", np.zeros((1, 10, 10, 10), dtype=np.float32))
    labels = np.zeros((1, 10, 10, 10), dtype=np.uint8)
    labels[0, 0:7, 0:7, 0:7] = 1  # mask2box: [0, 0, 0, 0.6, 0.6, 0.6]
    labels[0, 7:10, 7:10, 7:10] = 2  # [0.7, 0.7, 0.7, 0.9, 0.9, 0.9]: the last index is 9 of 10
    npy(folder / "mask.npy", labels)
    ct, mask = "M3D_RefSeg_npy/s0000/ct.npy", "M3D_RefSeg_npy/s0000/mask.npy"
    rows = [
        [ct, mask, "1", "0", "The largest organ in the abdomen.", "It is the liver, [SEG]."],
        [ct, mask, "2", "0", "A small lesion at the far corner.", "Sure, [SEG]."],
    ]
    write(root / "M3D_RefSeg_npy" / "M3D_RefSeg_test.csv", csv_text(REFSEG_HEADER, rows))
    return root


# --------------------------------------------------------------------------- one seed task per reader family


def test_vqa_seed_task_scores_slake_with_medregas_prompt_and_evaluator(data: Path, tmp_path: Path) -> None:
    write_slake(data)
    outputs = {"1": "Yes", "2": "left lung", "3": "MRI"}
    results, samples = score("xmedgpt_slake_en", outputs, tmp_path)
    assert results["n_samples"] == 3 and results["family"] == "vqa"  # the Chinese question filtered, one skipped
    assert results["n_skipped"] == 1
    f1 = 2 / (2 + 1e-8)  # MedRegA's F1 of a perfect answer (its 1e-8 guard)
    expected = {
        "closed_accuracy": 1.0,  # "yes" is the one closed question
        "open_recall": 0.5,  # "left lung" all found, "MRI" not "CT"
        "open_accuracy": 0.5,
        "token_f1": 2 * f1 / 3,
        "token_recall": 2 / 3,
        "exact_match": 2 / 3,  # case-insensitive
        "bleu1": 2 / 3,
    }
    assert results["metrics"] == pytest.approx(expected, abs=1e-9)
    assert "mode:medrega" in results["signatures"]["token_f1"]
    assert user_text(samples[0]) == (
        "You are a helpful medical assistant. You are required to answer the question based on the medical image. "
        "Is this a chest X-ray? Answer the question using a single word or phrase."
    )
    assert all(m["role"] != "system" for s in samples for m in s["prompt"])  # MedRegA's prompt is the user turn


@pytest.fixture
def tiny_chexbert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny random CheXbert (chexbert.pth + a bert-base-uncased config) in $REGBENCH_WEIGHTS_DIR."""
    torch = pytest.importorskip("torch")
    from regbench.metrics.chexbert import build_labeller
    from tests.helpers.tiny_bert import write_encoder

    weights = tmp_path / "weights"
    config = write_encoder(weights / "bert-base-uncased")
    torch.manual_seed(0)
    model = build_labeller(config)
    with torch.no_grad():
        for head in model.linear_heads:  # spread the classes so that some labels are positive
            head.weight.mul_(40)
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"model_state_dict": state, "epoch": 3}, weights / "chexbert.pth")
    monkeypatch.setenv("REGBENCH_WEIGHTS_DIR", str(weights))
    return weights


def test_report_seed_task_scores_iu_xray_with_nlg_and_chexbert(data: Path, tmp_path: Path, tiny_chexbert: Path) -> None:
    reports = {
        "CXR1_1_IM-0001": "The heart size is normal. The lungs are clear. There is no pleural effusion.",
        "CXR2_IM-0652": "Mild cardiomegaly is present. There is a small right pleural effusion with atelectasis.",
    }
    write_iu_xray(data, reports)
    results, samples = score("xmedgpt_iu_xray", dict(reports), tmp_path)  # each report predicted word for word
    metrics = results["metrics"]
    assert results["n_samples"] == 2 and len(samples[0]["reference"]["image"]) == 2  # both views in one request
    # identical texts: every n-gram and the longest common subsequence match, the embeddings are equal
    assert metrics["bleu1"] == pytest.approx(1.0, abs=1e-6) and metrics["bleu4"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["rouge_l"] == pytest.approx(1.0) and "meteor" not in metrics  # Table 3 has no METEOR
    assert metrics["chexbert_similarity"] == pytest.approx(1.0, abs=1e-5)
    for key in ("chexbert_f1_micro14", "chexbert_f1_macro14", "chexbert_f1_micro5", "chexbert_f1_example14"):
        assert key in metrics
    assert metrics["chexbert_f1_micro14"] == pytest.approx(1.0)  # the same labels on both sides
    assert "uncertain:negative" in results["signatures"]["chexbert_f1_micro14"]
    assert user_text(samples[0]).startswith("You are a helpful medical assistant. Your task is report generation.")


def test_region_seed_task_scores_medrega_detection_with_the_released_evaluator(data: Path, tmp_path: Path) -> None:
    write_medrega_detection(data)
    outputs = {
        # both boxes exact, the second one named "kidney" where the reference says "spleen"
        "t2r-1": "<ref>liver</ref><box>[[100, 100, 300, 300]]</box>, "
        "<ref>kidney</ref><box>[[600, 100, 800, 300]]</box>",
        # one of the two kidneys, exact
        "t2r-2": "<ref>left kidney</ref><box>[[100, 500, 300, 700]]</box>",
    }
    results, samples = score("medrega_detection_multi_object_single_region", outputs, tmp_path)
    # Released rule: "precision" = count / reference boxes, "recall" = count / predicted boxes, per sample.
    # t2r-1: 2 hits, 1 aligned name (G = P = 2); t2r-2: 1 hit, aligned (G = 2, P = 1).
    expected = {
        "region_precision": (2 / 2 + 1 / 2) / 2,
        "region_recall": (1 + 1) / 2,
        "region_f1": (1 + 2 / 3) / 2,
        "object_precision": (1 / 2 + 1 / 2) / 2,
        "object_recall": (1 / 2 + 1) / 2,
        "object_f1": (1 / 2 + 2 / 3) / 2,
        "alignment_precision": (1 / 2 + 1 / 2) / 2,
        "alignment_recall": (1 / 2 + 1) / 2,
        "alignment_f1": (1 / 2 + 2 / 3) / 2,
        "iou": (1 + 1 + 1) / (2 + 2),  # pooled over reference boxes
    }
    assert results["metrics"] == pytest.approx(expected, abs=1e-12)
    prompts = [user_text(s) for s in samples]
    assert all(p.startswith(MEDREGA_DETECTION) and p.count(MEDREGA_DETECTION) == 1 for p in prompts)
    assert prompts[0].endswith(
        "bottom right y. For each object, please utilize this format to represent the region "
        'with its bounding box: "<ref>object</ref><box>[[x1, y1, x2, y2]]</box>". There might be '
        "multiple boxes for one object, in which case the format is like "
        '"<ref>object</ref><box>[[x1, y1, x2, y2], [x3, y3, x4, y4]]</box>". '
        "Please locate <ref>liver</ref> and <ref>spleen</ref> in this CT scan."
    )


def test_region_seed_task_scores_ms_cxr_phrase_grounding_in_m4cxrs_format(data: Path, tmp_path: Path) -> None:
    write_ms_cxr(data)
    # the references are [0.1, 0.1, 0.5, 0.5] and [0.5, 0.5, 0.9, 0.9]; M4CXR answers in integers 0-100
    outputs = {"d1-0": "[10,10,50,50].", "d1-1": "[50,50,90,60]."}
    results, samples = score("m4cxr_ms_cxr_grounding", outputs, tmp_path)
    assert results["n_samples"] == 2  # the train phrase is not in the test split
    # d1-0 exact (IoU 1); d1-1 covers a quarter of its reference, inside it (IoU 0.25)
    assert results["metrics"] == pytest.approx({"acc_iou50": 0.5, "miou": 0.625, "hit_rate": 0.5}, abs=1e-9)
    assert user_text(samples[0]).endswith("this phrase describes: Right lower lobe opacity")


def test_3d_seed_task_scores_m3d_refseg_with_m3ds_enclosing_box_iou(data: Path, tmp_path: Path) -> None:
    write_m3d_refseg(data)
    outputs = {
        # M3D's own test vector against [0, 0, 0, 0.6, 0.6, 0.6]: true IoU 0.2256, M3D's 0.1742 (a miss)
        "M3D_RefSeg_test-0": "Sure, [0.17, 0.17, 0.17, 0.77, 0.77, 0.77].",
        "M3D_RefSeg_test-1": "It is the lesion, [0.7, 0.7, 0.7, 0.9, 0.9, 0.9].",
    }
    results, samples = score("m3d_refseg_rec", outputs, tmp_path)
    vector = 0.43**3 / (0.77**3 + 1e-6)  # intersection over the enclosing box, M3D's +1e-6
    exact = 0.2**3 / (0.2**3 + 1e-6)
    assert vector == pytest.approx(0.1742, abs=1e-4)
    expected = {"hit_rate": 0.5, "miou": (vector + exact) / 2, "acc_iou50": 0.5}
    assert results["metrics"] == pytest.approx(expected, abs=1e-9)
    assert samples[0]["reference"]["objects"][0]["boxes"] == [[0.0, 0.0, 0.0, 0.6, 0.6, 0.6]]
    assert user_text(samples[0]) == (
        "The largest organ in the abdomen. Please answer and find it by box based on the above description."
    )


# --------------------------------------------------------------------------- pinned split sizes

# The official test-split sizes the seed tasks pin (each with its source in a comment in the YAML);
# a task that includes another but reads other data must not inherit its pin.
PINNED = {
    "medrega_slake_en": 1061, "medrega_slake_en_regional_cot": 1061, "xmedgpt_slake_en": 1061,
    "vividmed_slake_en": 1061, "medrega_slake_zh": 1033, "m4cxr_slake_cxr_closed": 114,
    "medrega_vqa_rad": 451, "xmedgpt_vqa_rad": 451, "vividmed_vqa_rad": 451,
    "medrega_path_vqa": 6719, "xmedgpt_path_vqa": 6719,
    "xmedgpt_uncertainty_slake_en": 1061, "xmedgpt_uncertainty_vqa_rad": 451, "xmedgpt_uncertainty_path_vqa": 6719,
    "medrega_pneumoniamnist": 624, "xmedgpt_pneumoniamnist": 624, "medrega_octmnist": 1000,
    "xmedgpt_octmnist": 1000, "medrega_breastmnist": 156, "xmedgpt_breastmnist": 156,
    "medrega_chestmnist": 22433, "xmedgpt_chestmnist": 22433, "medrega_organamnist": 17778,
    "xmedgpt_organamnist": 17778, "medrega_organcmnist": 8216, "xmedgpt_organcmnist": 8216,
    "medrega_organsmnist": 8827, "xmedgpt_organsmnist": 8827, "xmedgpt_pathmnist": 7180,
    "medrega_vindr_cxr": 3000, "medrega_vindr_cxr_regional_cot": 3000, "xmedgpt_vindr_cxr": 3000,
    "vividmed_vindr_cxr_grounding": 3000, "m3d_cap_report": 2000,
}  # fmt: skip


def test_seed_tasks_pin_the_official_split_sizes_with_their_source() -> None:
    tasks = {name: load_spec(path, TaskSpec) for name, path in seed_tasks().items()}
    pinned = {name: t.dataset.size for name, t in tasks.items() if t.dataset.size is not None}
    assert pinned == PINNED
    for name, path in seed_tasks().items():
        text = path.read_text(encoding="utf-8")
        if "size:" in text:  # the file that sets a pin says where the number comes from
            assert "# dataset.size: " in text, name


def test_data_check_reports_a_split_that_is_not_the_pinned_size(data: Path) -> None:
    write_slake(data)  # three valid English test questions, not SLAKE's 1,061
    result = cli.invoke(app, ["data", "check", "medrega_slake_en"])
    assert result.exit_code == 1
    assert "the split loads 3 samples; the task pins dataset.size: 1061" in result.stdout
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- regbench list tasks


def test_data_status_counts_present_data_once_and_never_raises(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tasks = seed_tasks()
    slake_en, slake_cot = (load_spec(tasks[n], TaskSpec) for n in ("medrega_slake_en", "medrega_slake_en_regional_cot"))
    assert data_status(slake_en).present is False and data_status(slake_en).size_text() == "-"
    write_slake(data)
    seen: dict[str, Any] = {}
    status = data_status(slake_en, seen=seen)
    assert (status.present, status.size, status.skipped, status.size_text()) == (True, 3, 1, "3 (1 skipped)")
    assert data_status(slake_cot, seen=seen) is status and len(seen) == 1  # the same split, loaded once
    assert capsys.readouterr().err == ""  # the skip warning is counted, not printed
    assert status.data_text() == "yes"
    closed = data_status(load_spec(tasks["m4cxr_slake_cxr_closed"], TaskSpec))  # its id list is not made yet
    assert closed.present and closed.size is None and closed.size_text() == "-"
    assert closed.data_text().startswith("error: dataset.options.ids: file not found")
    (data / "Slake1.0" / "test.json").write_text("[not json", encoding="utf-8")
    broken = data_status(slake_en)
    assert broken.present and broken.error is not None and broken.data_text() == broken.error
    assert broken.error.startswith("error: dataset.root: ") and "not valid JSON" in broken.error  # head and tail
    assert len(broken.error) == 120 and "…" in broken.error


def test_list_tasks_shows_dataset_size_and_presence(data: Path) -> None:
    write_slake(data)
    result = cli.invoke(app, ["list", "tasks"])
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:]]
        for line in result.output.splitlines()
        if line.startswith("│")
    }
    assert rows["xmedgpt_slake_en"][:6] == ["vqa", "en", "", "slake:test", "3 (1 skipped)", "yes"]
    assert rows["medrega_vqa_rad"][3:6] == ["vqa_rad:test", "-", "no"]
    assert rows["demo_vqa_en"][3:6] == ["jsonl", "6", "yes"]
    # present but unreadable: the data column says why, not "yes" (its id list is not made yet)
    assert rows["m4cxr_slake_cxr_closed"][3:5] == ["slake:test", "-"]
    assert rows["m4cxr_slake_cxr_closed"][5].startswith("error: dataset.options.ids: file")
    result = cli.invoke(app, ["list", "tasks", "--no-count"])
    assert result.exit_code == 0 and "xmedgpt_slake_en" in result.output and "skipped" not in result.output
