"""Per-output cost of parsing a model output, the fast parser against the reference one (issue 16).

For each box format, 2,000 realistic outputs of that format (random boxes, ~5 per output over 2-4
named organs, as the model family writes them) are parsed by ``regbench.parsing.parse_output``
(what a run uses) and by ``regbench.parsing.reference.parse_output_reference`` (the parser chain
before issue 16, kept as the definition of the results), both with ``expect_boxes=True``. The
script first asserts that every output gives the same ``Parsed`` both ways, then times each
side as the best of ``--repeat`` passes of CPU time (``time.process_time``: on a shared machine
the wall clock also counts other jobs), alternating the two sides.

Usage: python bench/bench_parsing.py [--n 2000] [--repeat 7] [--formats medrega,grounded,...]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable

from regbench.parsing import parse_output
from regbench.parsing.reference import parse_output_reference
from regbench.types import Parsed, Sample

NAMES = ["liver", "left kidney", "right kidney", "spleen", "pancreas", "heart", "left lung", "right lung"]
SAMPLE = Sample(id="s", width=1024, height=768)


def objects(rng: random.Random) -> list[tuple[str, list[list[float]]]]:
    """2-4 organs, ~5 boxes in all, as 0-1 corners."""
    names = rng.sample(NAMES, rng.randint(2, 4))
    found: dict[str, list[list[float]]] = {name: [] for name in names}
    for k in range(rng.randint(3, 7)):
        x, y = rng.random() * 0.7, rng.random() * 0.7
        found[names[k % len(names)]].append([x, y, x + 0.05 + rng.random() * 0.25, y + 0.05 + rng.random() * 0.25])
    return list(found.items())


def grid(box: list[float], scale: int) -> str:
    return ", ".join(str(round(v * scale)) for v in box)


def medrega(rng: random.Random, scale: int = 999) -> str:
    """A MedRegA detection answer: ``<ref>liver</ref><box>[[..], [..]]</box>, <ref>...``."""
    groups = (f"<ref>{n}</ref><box>[{', '.join(f'[{grid(b, scale)}]' for b in bs)}]</box>" for n, bs in objects(rng))
    return ", ".join(groups)


def grounded(rng: random.Random) -> str:
    """A MedRegA grounded report: a finding sentence per organ, its boxes named inside the sentence."""
    findings = ["A nodular opacity is seen in the", "There is mild enlargement of the", "No lesion in the"]
    sentences = []
    for name, bs in objects(rng):
        box_lists = ", ".join(f"[{grid(b, 999)}]" for b in bs)
        sentences.append(f"{rng.choice(findings)} <ref>{name}</ref><box>[{box_lists}]</box>.")
    return " ".join(sentences) + " Otherwise unremarkable."


def m4cxr(rng: random.Random) -> str:
    return " ".join(f"{n} {', '.join(f'[{grid(b, 100)}]' for b in bs)}." for n, bs in objects(rng))


def floats(box: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in box) + "]"


def normalized(rng: random.Random) -> str:
    return "; ".join(f"{n} {', '.join(map(floats, bs))}" for n, bs in objects(rng))


def m3d(rng: random.Random) -> str:
    boxes = [[*b[:2], 0.2, *b[2:], 0.6] for _, bs in objects(rng) for b in bs]
    return "The lesion is at " + ", ".join(map(floats, boxes)) + "."


def qwen_vl(rng: random.Random) -> str:
    parts = []
    for name, bs in objects(rng):
        corners = "".join(f"<box>({grid(b[:2], 999)}),({grid(b[2:], 999)})</box>".replace(" ", "") for b in bs)
        parts.append(f"<ref>{name}</ref>{corners}")
    return " ".join(parts)


def qwen2_vl(rng: random.Random) -> str:
    text = qwen_vl(rng).replace("<ref>", "<|object_ref_start|>").replace("</ref>", "<|object_ref_end|>")
    return text.replace("<box>", "<|box_start|>").replace("</box>", "<|box_end|>")


def qwen25_vl(rng: random.Random) -> str:
    items = [{"bbox_2d": [round(v * 1000) for v in b], "label": n} for n, bs in objects(rng) for b in bs]
    return "```json\n" + json.dumps(items, indent=2) + "\n```"


def vividmed(rng: random.Random) -> str:
    parts = []
    for name, bs in objects(rng):
        parts.append(f"<p>{name} opacity</p> {', '.join(map(floats, bs))} is seen.")
    return " ".join(parts)


# (label, box format, output generator)
CASES: list[tuple[str, str, Callable[[random.Random], str]]] = [
    ("medrega: detection answer", "medrega", medrega),
    ("medrega: grounded report", "medrega", lambda rng: grounded(rng)),
    ("internvl", "internvl", lambda rng: medrega(rng, 1000)),
    ("m4cxr", "m4cxr", m4cxr),
    ("normalized", "normalized", normalized),
    ("m3d", "m3d", m3d),
    ("qwen_vl", "qwen_vl", qwen_vl),
    ("qwen2_vl", "qwen2_vl", qwen2_vl),
    ("qwen25_vl", "qwen25_vl", qwen25_vl),
    ("vividmed", "vividmed", vividmed),
    ("auto (MedRegA detection answers)", "auto", medrega),
    ("medrega_released (as a task's format)", "medrega_released", medrega),
]


def cpu_per_output(parse: Callable[..., Parsed], outputs: list[str], box_format: str) -> float:
    start = time.process_time()
    for output in outputs:
        parse(output, box_format=box_format, sample=SAMPLE, expect_boxes=True)
    return (time.process_time() - start) / len(outputs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--cases", default="", help="comma-separated box formats to run (default: all)")
    args = parser.parse_args()
    wanted = set(filter(None, args.cases.split(",")))
    print("| format (outputs) | boxes per output | reference | fast | speed-up |")
    print("|---|---|---|---|---|")
    for label, box_format, make in CASES:
        if wanted and box_format not in wanted:
            continue
        rng = random.Random(0)
        outputs = [make(rng) for _ in range(args.n)]
        boxes = 0
        for output in outputs:
            fast = parse_output(output, box_format=box_format, sample=SAMPLE, expect_boxes=True)
            reference = parse_output_reference(output, box_format=box_format, sample=SAMPLE, expect_boxes=True)
            assert fast == reference and fast.model_dump_json() == reference.model_dump_json(), output
            boxes += sum(len(region.boxes) for region in fast.objects)
        best = {"reference": float("inf"), "fast": float("inf")}
        for _ in range(args.repeat):
            best["reference"] = min(best["reference"], cpu_per_output(parse_output_reference, outputs, box_format))
            best["fast"] = min(best["fast"], cpu_per_output(parse_output, outputs, box_format))
        ratio = best["reference"] / best["fast"]
        print(
            f"| {label} | {boxes / len(outputs):.1f} | {best['reference'] * 1e6:.1f} µs | "
            f"{best['fast'] * 1e6:.1f} µs | {ratio:.1f}x |",
            flush=True,
        )


if __name__ == "__main__":
    main()
