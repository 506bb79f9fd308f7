"""What a task's samples lack for their family: listed by `regbench data check`, errors for `run`/`score`."""

from __future__ import annotations

from pathlib import Path

from regbench.spec import TaskSpec
from regbench.types import Sample

# Fields a family's metrics read from the reference (``run`` and ``score`` stop on an empty one).
_NEEDS: dict[str, tuple[str, ...]] = {
    "vqa": ("answer",),
    "report": ("answer",),
    "classification": ("labels",),
    "region_identification": ("objects", "answer"),
    "detection": ("objects",),
    "grounded_report": ("answer", "objects"),
}
# Fields the prompt asks about: `data check` flags an empty one, but a template may do without it.
_ASKS: dict[str, tuple[str, ...]] = {"vqa": ("question",)}


def check_samples(task: TaskSpec, samples: list[Sample]) -> list[str]:
    """Problems found in the samples (empty when the data fits the task), one line each."""
    problems: list[str] = []
    for sample in samples:
        where = f"sample {sample.id!r}"
        for name in _ASKS.get(task.family, ()):
            if not getattr(sample, name):
                problems.append(f"{where}: `{name}` is empty but {task.family} tasks ask it")
        problems.extend(f"{where}: {problem}" for _, problem in reference_problems(task.family, sample))
        for image in sample.image:
            if not Path(image).exists():
                problems.append(f"{where}: image not found: {image}")
        if task.labels and task.family == "classification":
            unknown = sorted(set(sample.labels) - set(task.labels))
            if unknown:
                problems.append(f"{where}: labels {unknown} are not in the task's label set")
    return problems


def reference_problems(family: str, sample: Sample) -> list[tuple[str, str]]:
    """What the sample's reference lacks for ``family``, or gets wrong in its boxes: (field, problem) pairs."""
    problems: list[tuple[str, str]] = []
    for name in _NEEDS.get(family, ()):
        if not getattr(sample, name):
            problems.append((name, f"`{name}` is empty but {family} tasks score against it"))
    for i, obj in enumerate(sample.objects):
        for j, box in enumerate(obj.boxes):
            field = f"objects[{i}].boxes[{j}]"
            problems.extend((field, f"object {obj.name!r} box {j}: {p}") for p in _box_problems(box))
    return problems


def _box_problems(box: list[float]) -> list[str]:
    half = len(box) // 2
    problems = []
    if any(v < 0 or v > 1 for v in box):
        problems.append(f"{box} is not in 0–1 (reference boxes are normalised to the image size)")
    if any(box[i] > box[i + half] for i in range(half)):
        problems.append(f"{box} has a corner swapped (x1 > x2 or y1 > y2)")
    return problems


def unreadable_images(samples: list[Sample], *, at_most: int = 20) -> list[str]:
    """Images that exist but do not open, among those of ``at_most`` samples spread over the split.

    Only images Pillow reads are tried (volumes as ``.npy``/``.nii`` are left out), and none when
    Pillow is not installed; a missing file is reported by :func:`check_samples`.
    """
    try:
        from PIL import Image
    except ImportError:
        return []
    step = max(1, len(samples) // at_most)
    problems = []
    for sample in samples[::step][:at_most]:
        for image in sample.image:
            path = Path(image)
            if not path.is_file() or path.suffix.lower() in (".npy", ".npz", ".nii", ".gz"):
                continue
            try:
                with Image.open(path) as opened:
                    opened.verify()
            except Exception as exc:  # any decoder error: the file is not an image Pillow can read
                problems.append(f"sample {sample.id!r}: image not readable: {image} ({type(exc).__name__})")
    return problems
