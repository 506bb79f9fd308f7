"""Check that regbench's CheXbert labeller gives f1chexbert's labels on the same checkpoint.

Not part of CI: f1chexbert 0.0.2 needs transformers < 5 and its own virtualenv, e.g.
    python3 -m venv /tmp/f1cx && /tmp/f1cx/bin/pip install torch==2.13.0 "transformers>=4.57,<5" f1chexbert==0.0.2
    python scripts/verify_chexbert.py --f1chexbert-python /tmp/f1cx/bin/python [--checkpoint chexbert.pth
        --encoder /path/to/bert-base-uncased] [--n 200]

Without --checkpoint, a full-size CheXbert with random weights (fixed seed) is built, since the
published chexbert.pth cannot be fetched everywhere; the comparison exercises the same code
either way. f1chexbert is pointed at the same files through the caches it reads
(XDG_CACHE_HOME/chexbert/chexbert.pth and a Hugging Face cache entry for bert-base-uncased),
with HF_HUB_OFFLINE=1. Labels are compared in f1chexbert's "classification" mode
(1 positive, 0 negative, -1 uncertain, "" blank) for every report and condition.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_chexbert import build, reports

from regbench.metrics.chexbert import CONDITIONS, Labeller

F1CHEXBERT = """
import json, sys
from f1chexbert import F1CheXbert
model = F1CheXbert(device="cpu")
reports = json.load(open(sys.argv[1]))
print(json.dumps([model.get_label(r, mode="classification") for r in reports]))
"""
CLASSIFICATION = {0: "", 1: 1, 2: 0, 3: -1}


def fake_caches(root: Path, checkpoint: Path, encoder: Path) -> dict[str, str]:
    """Point f1chexbert's lookups at our files, with no network."""
    snapshot = root / "hf" / "models--bert-base-uncased" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for item in encoder.iterdir():
        shutil.copy(item, snapshot / item.name)
    (root / "hf" / "models--bert-base-uncased" / "refs").mkdir()
    (root / "hf" / "models--bert-base-uncased" / "refs" / "main").write_text("0" * 40)
    (root / "xdg" / "chexbert").mkdir(parents=True)
    shutil.copy(checkpoint, root / "xdg" / "chexbert" / "chexbert.pth")
    return {
        "HF_HUB_CACHE": str(root / "hf"),
        "XDG_CACHE_HOME": str(root / "xdg"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--f1chexbert-python", required=True)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--encoder", type=Path)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    texts = [*reports(args.n, seed=7), "", "   ", "No acute cardiopulmonary process.\n\nStable."]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        checkpoint, encoder = (args.checkpoint, args.encoder) if args.checkpoint else build(root)
        ours, _ = Labeller(checkpoint, encoder, device="cpu").label(texts)
        (root / "reports.json").write_text(json.dumps(texts))
        env = {**os.environ, **fake_caches(root, checkpoint, encoder)}
        done = subprocess.run(
            [args.f1chexbert_python, "-c", F1CHEXBERT, str(root / "reports.json")],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            sys.exit(done.stderr[-3000:])
        theirs = json.loads(done.stdout.strip().splitlines()[-1])
    mapped = [[CLASSIFICATION[int(v)] for v in row] for row in ours.tolist()]
    differing = [
        (i, c)
        for i, (a, b) in enumerate(zip(mapped, theirs, strict=True))
        for c, (x, y) in enumerate(zip(a, b, strict=True))
        if x != y
    ]
    counts = {label: sum(row.count(label) for row in mapped) for label in (1, 0, -1, "")}
    print(f"{len(texts)} reports x {len(CONDITIONS)} conditions; label counts {counts}")
    print(
        f"differences: {len(differing)}"
        + (f" (first: report {differing[0][0]}, {CONDITIONS[differing[0][1]]})" if differing else "")
    )
    sys.exit(1 if differing else 0)


if __name__ == "__main__":
    main()
