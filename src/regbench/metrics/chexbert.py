"""CheXbert: the labeller (Smit et al. 2020) on transformers, and the label-F1 / similarity metrics.

Architecture as published: a BERT encoder (bert-base-uncased) and, on the [CLS] vector, 13
four-class heads (blank, positive, negative, uncertain) plus one two-class head for "No
Finding". The checkpoint (``chexbert.pth``, a ``model_state_dict`` saved from DataParallel)
is loaded *strictly*, so a wrong file fails loudly instead of leaving random heads. Reports are
labelled in length-sorted batches, on CPU or GPU: the linear layers run on real tokens only
(padding only enters attention) and the last layer only for [CLS], the one position the heads
read (same labels and CLS vectors as the full forward, to float rounding). Every label (and CLS
embedding) is cached by checkpoint and report text, so references shared by many models and
runs are labelled once.

Keys (M4CXR's naming): ``chexbert_f1_micro14`` / ``macro14`` / ``micro5`` / ``macro5`` /
``example14`` (scikit-learn's micro / macro / samples averages, zero_division 0) and
``chexbert_accuracy5`` (all five labels right), on the positive class, with uncertain counted
as negative (default) or positive (``uncertain_as: positive``, as f1chexbert does);
``chexbert_similarity``, the cosine of the two reports' CLS embeddings (RadCliQ's and
MedRegA's "CheXbert"); and ``chexbert_f1_<label>`` per condition.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from regbench.errors import RegbenchError, WeightsMissingError
from regbench.metrics.base import Metric, Stats, register_metric
from regbench.metrics.classification import f1_from_counts
from regbench.signature import Signature
from regbench.types import Parsed, Sample
from regbench.weights import REQUIREMENTS, file_digest, resolve_model, weights_dir

CONDITIONS = [
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
    "No Finding",
]
FIVE = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
BLANK, POSITIVE, NEGATIVE, UNCERTAIN = 0, 1, 2, 3
CHEST_XRAY = {"chest_xray", "cxr", "chest x-ray", "xray", "x-ray"}


def slug(condition: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", condition.lower()).strip("_")


def build_labeller(config: Any) -> Any:
    """The CheXbert module for a BertConfig (names match the published checkpoint's keys)."""
    import torch
    import torch.nn.functional as F
    from transformers import BertModel

    class CheXbertLabeller(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # The pooler is kept so the published checkpoint (which has its weights) loads strictly; nothing runs it.
            self.bert = BertModel(config, add_pooling_layer=True)
            self.dropout = torch.nn.Dropout(config.hidden_dropout_prob)
            hidden = config.hidden_size
            self.linear_heads = torch.nn.ModuleList(
                [torch.nn.Linear(hidden, 4) for _ in range(13)] + [torch.nn.Linear(hidden, 2)]
            )

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
            """(labels (n, 14), CLS embeddings (n, hidden)) of right-padded reports."""
            fast = not self.training and config.position_embedding_type == "absolute" and not config.is_decoder
            cls = self.encode(input_ids, attention_mask) if fast else self.encode_plain(input_ids, attention_mask)
            logits = [head(self.dropout(cls)) for head in self.linear_heads]
            return torch.stack([x.argmax(dim=1) for x in logits], dim=1), cls

        def encode_plain(self, input_ids: Any, attention_mask: Any) -> Any:
            """The CLS vector as f1chexbert computes it: the whole BertModel, then position 0."""
            return self.bert(input_ids=input_ids, attention_mask=attention_mask)[0][:, 0, :]

        def encode(self, input_ids: Any, attention_mask: Any) -> Any:
            """The same CLS vector with less work: the linear layers run on real tokens only (no padding),
            and the last layer only for [CLS], the one position the heads read (its keys and values still
            come from every token). Attention itself runs padded, per report."""
            rows, width = input_ids.shape
            flat = attention_mask.reshape(-1).nonzero().squeeze(1)  # real tokens in the padded (rows * width) order
            lengths = attention_mask.sum(1)
            first = torch.cumsum(lengths, 0) - lengths  # each report's [CLS] among them
            mask = self.bert.get_extended_attention_mask(attention_mask, input_ids.shape)
            h = self.bert.embeddings(input_ids=input_ids).reshape(rows * width, -1)[flat]
            hidden = h.shape[1]

            def heads_view(x: Any, length: int) -> Any:  # (tokens, hidden) -> (rows, heads, length, head size)
                if length > 1:
                    padded = x.new_zeros(rows * width, hidden)
                    padded[flat] = x
                    x = padded
                return x.view(rows, length, config.num_attention_heads, -1).transpose(1, 2)

            layers = self.bert.encoder.layer
            for i, layer in enumerate(layers):
                attn = layer.attention.self
                last = i == len(layers) - 1
                query_in = h[first] if last else h
                context = F.scaled_dot_product_attention(
                    heads_view(attn.query(query_in), 1 if last else width),
                    heads_view(attn.key(h), width),
                    heads_view(attn.value(h), width),
                    attn_mask=mask,
                )
                context = context.transpose(1, 2).reshape(-1, hidden)
                context = context if last else context[flat]
                a = layer.attention.output(context, query_in)
                h = layer.output(layer.intermediate(a), a)
            return h

    return CheXbertLabeller()


class Labeller:
    """Loads CheXbert once and labels reports in batches, with a persistent cache."""

    def __init__(
        self,
        checkpoint: Path,
        encoder_dir: Path,
        *,
        device: str = "auto",
        batch_size: int = 32,
        cache: Path | None = None,
    ) -> None:
        import torch
        from transformers import AutoTokenizer, BertConfig

        config = BertConfig.from_pretrained(str(encoder_dir))
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir))
        except (OSError, ValueError, ImportError) as exc:
            message = f"chexbert: no usable tokenizer in {encoder_dir} (fetch bert-base-uncased): {exc}"
            raise WeightsMissingError(message) from None
        # An offline transformers can hand back an empty tokenizer without raising, and a wrong
        # vocabulary would silently feed the checkpoint other token ids: it must be the encoder's size.
        if len(self.tokenizer) != config.vocab_size or self.tokenizer.tokenize("heart") == [self.tokenizer.unk_token]:
            raise WeightsMissingError(
                f"chexbert: the tokenizer in {encoder_dir} is empty or not BERT's ({len(self.tokenizer)} tokens, "
                f"the encoder has {config.vocab_size}; fetch bert-base-uncased)"
            )
        self.model = build_labeller(config)
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        state = state.get("model_state_dict", state)
        state = {k.removeprefix("module."): v for k, v in state.items() if not k.endswith("position_ids")}
        try:
            self.model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise RegbenchError(f"chexbert: {checkpoint} does not fit the CheXbert architecture: {exc}") from None
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.model.to(device).eval()
        self.batch_size = batch_size
        # Cached labels belong to this checkpoint read through this tokenizer and encoder config.
        settings = {k: v for k, v in config.to_dict().items() if not k.startswith("_") and k != "transformers_version"}
        encoder = json.dumps([sorted(self.tokenizer.get_vocab().items()), settings], sort_keys=True, default=str)
        self.fingerprint = f"{file_digest(checkpoint)}-{hashlib.sha256(encoder.encode()).hexdigest()[:8]}"
        self._db = _open_cache(cache) if cache else None

    def label(self, reports: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(labels of shape (n, 14), CLS embeddings of shape (n, hidden)); duplicates labelled once."""
        unique = list(dict.fromkeys(_clean(r) for r in reports))
        found = self._cached(unique)
        todo = [r for r in unique if r not in found]
        if todo:
            found.update(self._run(todo))
            self._store({r: found[r] for r in todo})
        labels = np.array([found[_clean(r)][0] for r in reports], dtype=np.int64).reshape(len(reports), 14)
        embeddings = np.array([found[_clean(r)][1] for r in reports], dtype=np.float32)
        return labels, embeddings

    def _run(self, reports: list[str]) -> dict[str, tuple[list[int], list[float]]]:
        import torch

        out: dict[str, tuple[list[int], list[float]]] = {}
        encoded = self.tokenizer(reports, truncation=True, max_length=512)["input_ids"]  # one call for all
        order = sorted(range(len(reports)), key=lambda i: len(encoded[i]))  # similar lengths pad little
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            width = max(len(encoded[i]) for i in batch)
            ids = torch.full((len(batch), width), self.tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[row, : len(encoded[i])] = 1
            with torch.inference_mode():
                labels, cls = self.model(ids.to(self.device), mask.to(self.device))
            for i, row_labels, row_cls in zip(batch, labels.tolist(), cls.float().cpu().tolist(), strict=True):
                out[reports[i]] = (row_labels, row_cls)
        return out

    def _cached(self, reports: list[str]) -> dict[str, tuple[list[int], list[float]]]:
        if self._db is None or not reports:
            return {}
        found = {}
        for report in reports:
            row = self._db.execute(
                "SELECT labels, embedding FROM labels WHERE model = ? AND report = ?", (self.fingerprint, report)
            ).fetchone()
            if row:
                found[report] = (json.loads(row[0]), np.frombuffer(row[1], dtype=np.float32).tolist())
        return found

    def _store(self, labelled: dict[str, tuple[list[int], list[float]]]) -> None:
        if self._db is None or not labelled:
            return
        self._db.executemany(
            "INSERT OR REPLACE INTO labels (model, report, labels, embedding) VALUES (?, ?, ?, ?)",
            [
                (self.fingerprint, r, json.dumps(v[0]), np.asarray(v[1], dtype=np.float32).tobytes())
                for r, v in labelled.items()
            ],
        )


def _clean(report: str) -> str:
    return re.sub(r"\s+", " ", report).strip()


def _open_cache(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS labels (model TEXT, report TEXT, labels TEXT, embedding BLOB, "
        "PRIMARY KEY (model, report))"
    )
    return db


_LABELLERS: dict[tuple[str, str, str, int, str], Labeller] = {}


def get_labeller(checkpoint: Path, encoder: Path, device: str, batch_size: int, cache: Path | None) -> Labeller:
    """One loaded labeller per (checkpoint, encoder, device, batch size, cache) in a process."""
    key = (str(checkpoint), str(encoder), device, batch_size, str(cache))
    if key not in _LABELLERS:
        _LABELLERS[key] = Labeller(checkpoint, encoder, device=device, batch_size=batch_size, cache=cache)
    return _LABELLERS[key]


def binarize(labels: np.ndarray, uncertain_as: str) -> np.ndarray:
    """Positive-class indicators: positive, plus uncertain when ``uncertain_as == "positive"``."""
    positive = labels == POSITIVE
    return positive | (labels == UNCERTAIN) if uncertain_as == "positive" else positive


def label_f1(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Micro, macro and samples F1 of boolean label matrices (scikit-learn, zero_division=0)."""
    tp, fp, fn = (truth & pred).sum(0), (~truth & pred).sum(0), (truth & ~pred).sum(0)
    row_tp, row_fp, row_fn = (truth & pred).sum(1), (~truth & pred).sum(1), (truth & ~pred).sum(1)
    return {
        "micro": float(f1_from_counts(tp.sum(), fp.sum(), fn.sum())),
        "macro": float(np.mean(f1_from_counts(tp, fp, fn))),
        "samples": float(np.mean(f1_from_counts(row_tp, row_fp, row_fn))),
        "per_label": f1_from_counts(tp, fp, fn).tolist(),  # type: ignore[dict-item]
    }


class CheXbertOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    checkpoint: str | None = None
    """Path to chexbert.pth; default: REGBENCH_WEIGHTS_DIR/chexbert.pth."""
    encoder: str = "bert-base-uncased"
    """Directory (or weights name / cached hub id) of the BERT config and tokenizer."""
    uncertain_as: Literal["negative", "positive"] = "negative"
    """How an uncertain label counts in F1 (VividMed and M4CXR count it positive)."""
    batch_size: int = Field(32, gt=0)
    """Reports per forward pass (32 was fastest on a 2-core CPU: padding costs only attention; raise it on a GPU)."""
    device: str = "auto"
    """``cpu``, ``cuda``, ``cuda:1``; ``auto``: cuda when available."""
    label_cache: bool = True
    """Keep the labels of each report text in a SQLite file next to the weights directory (reused by later runs)."""


@register_metric("chexbert")
class CheXbert(Metric):
    """CheXbert label F1 (micro / macro over 14 and 5 conditions, example F1), accuracy on 5, similarity."""

    keys = {
        "chexbert_f1_micro14": True,
        "chexbert_f1_macro14": True,
        "chexbert_f1_micro5": True,
        "chexbert_f1_macro5": True,
        "chexbert_f1_example14": True,
        "chexbert_accuracy5": True,
        "chexbert_similarity": True,
        **{f"chexbert_f1_{slug(c)}": True for c in CONDITIONS},
    }
    Options = CheXbertOptions
    aggregation = "corpus"
    bootstrap_trials = 1000

    def __init__(self, options: BaseModel | None = None, context: Any = None) -> None:
        super().__init__(options, context)
        opts: CheXbertOptions = self.options  # type: ignore[assignment]
        modality = (self.context.modality or "").lower()
        if modality and modality not in CHEST_XRAY:
            warnings.warn(f"chexbert is a chest X-ray metric; task {self.context.task} is {modality}", stacklevel=2)
        self.checkpoint = Path(opts.checkpoint) if opts.checkpoint else REQUIREMENTS["chexbert.pth"].require()
        if not self.checkpoint.is_file():
            raise WeightsMissingError(f"chexbert: checkpoint not found: {self.checkpoint}")
        self.encoder = resolve_model(opts.encoder, used_by="chexbert")
        self._labeller: Labeller | None = None

    def prepare(self, samples: Sequence[Sample] = ()) -> None:
        self.labeller()

    def labeller(self) -> Labeller:
        opts: CheXbertOptions = self.options  # type: ignore[assignment]
        cache = weights_dir().parent / "chexbert-labels.sqlite" if opts.label_cache else None
        return get_labeller(self.checkpoint, self.encoder, opts.device, opts.batch_size, cache)

    def stats(self, parsed: Parsed, sample: Sample) -> Stats:
        return self.stats_batch([(parsed, sample)])[0]

    def stats_batch(self, items: Sequence[tuple[Parsed, Sample]]) -> list[Stats]:
        if not items:
            return []
        labels, embeddings = self.labeller().label([p.text for p, _ in items] + [s.answer for _, s in items])
        n = len(items)
        rows = []
        for i in range(n):
            a, b = embeddings[i], embeddings[n + i]
            norm = float(np.linalg.norm(a) * np.linalg.norm(b))
            rows.append(
                {
                    "pred": labels[i].tolist(),
                    "ref": labels[n + i].tolist(),
                    "chexbert_similarity": float(a @ b) / norm if norm else 0.0,
                }
            )
        return rows

    def sample_scores(self, stats: Stats) -> dict[str, float | None]:
        return {"chexbert_similarity": stats["chexbert_similarity"]}

    def finalize(self, stats: Sequence[Stats]) -> dict[str, float]:
        if not stats:
            return {}
        opts: CheXbertOptions = self.options  # type: ignore[assignment]
        truth = binarize(np.array([s["ref"] for s in stats]), opts.uncertain_as)
        pred = binarize(np.array([s["pred"] for s in stats]), opts.uncertain_as)
        five = [CONDITIONS.index(c) for c in FIVE]
        all14, sub5 = label_f1(truth, pred), label_f1(truth[:, five], pred[:, five])
        values = {
            "chexbert_f1_micro14": all14["micro"],
            "chexbert_f1_macro14": all14["macro"],
            "chexbert_f1_example14": all14["samples"],
            "chexbert_f1_micro5": sub5["micro"],
            "chexbert_f1_macro5": sub5["macro"],
            "chexbert_accuracy5": float(np.mean(np.all(truth[:, five] == pred[:, five], axis=1))),
            "chexbert_similarity": float(np.mean([s["chexbert_similarity"] for s in stats])),
        }
        values.update({f"chexbert_f1_{slug(c)}": v for c, v in zip(CONDITIONS, all14["per_label"], strict=True)})
        return values

    def signature(self, key: str | None = None) -> Signature:
        """The checkpoint by hash, the uncertain-label rule and the F1 averaging."""
        opts: CheXbertOptions = self.options  # type: ignore[assignment]
        parts = [("ckpt", file_digest(self.checkpoint)), ("uncertain", opts.uncertain_as), ("avg", "sklearn")]
        return Signature.for_plugin(self.name, key, parts)
