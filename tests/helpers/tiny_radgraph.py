"""A tiny RadGraph (DyGIE) model directory in the radgraph package's layout, random weights:
radgraph/{config.json, vocabulary/, weights.th} over a tiny local BERT. Builds in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import BertModel

from tests.helpers.tiny_bert import write_encoder

LABELS = ["ANAT-DP", "OBS-DP", "OBS-U", "OBS-DA"]
RELATIONS = ["modify", "located_at", "suggestive_of"]


def build(root: Path) -> Path:
    """Write ``root/radgraph`` (the directory the package loads) and a tiny BERT beside it."""
    bert = root / "tiny-bert"
    config = write_encoder(bert)
    torch.manual_seed(0)
    BertModel(config).save_pretrained(bert)
    model_dir = root / "radgraph"
    vocabulary = model_dir / "vocabulary"
    vocabulary.mkdir(parents=True)
    (vocabulary / "non_padded_namespaces.txt").write_text("*tags\n*labels\n")
    (vocabulary / "radgraph__ner_labels.txt").write_text("\n".join(["", *LABELS]) + "\n")
    (vocabulary / "radgraph__relation_labels.txt").write_text("\n".join(RELATIONS) + "\n")
    model_config = {
        "type": "dygie",
        "embedder": {"token_embedders": {"bert": {"model_name": str(bert), "max_length": 512}}},
        "initializer": {},
        "module_initializer": {},
        "feature_size": 8,
        "max_span_width": 4,
        "target_task": "relation",
        "feedforward_params": {"num_layers": 1, "hidden_dims": 16, "dropout": 0.0},
        "loss_weights": {"ner": 1.0, "relation": 1.0, "coref": 0.0, "events": 0.0},
        "modules": {
            "ner": {},
            "relation": {"spans_per_word": 0.5},
            "coref": {"spans_per_word": 0.3, "max_antecedents": 10, "coref_prop": 0},
            "events": {
                "trigger_spans_per_word": 0.3,
                "argument_spans_per_word": 0.8,
                "loss_weights": {"trigger": 1.0, "arguments": 1.0},
            },
        },
    }
    config_json = {
        "dataset_reader": {
            "max_span_width": 4,
            "token_indexers": {"bert": {"model_name": str(bert), "max_length": 512}},
        },
        "model": model_config,
    }
    (model_dir / "config.json").write_text(json.dumps(config_json))

    from radgraph.allennlp.data import Vocabulary
    from radgraph.allennlp.modules.text_field_embedders import BasicTextFieldEmbedder
    from radgraph.allennlp.modules.token_embedders import PretrainedTransformerMismatchedEmbedder
    from radgraph.dygie.models import dygie

    torch.manual_seed(0)
    embedder = BasicTextFieldEmbedder(
        {"bert": PretrainedTransformerMismatchedEmbedder(model_name=str(bert), max_length=512)}
    )
    arguments = {
        k: v for k, v in model_config.items() if k not in ("type", "embedder", "initializer", "module_initializer")
    }
    model = dygie.DyGIE(vocab=Vocabulary.from_files(str(vocabulary)), embedder=embedder, **arguments)
    torch.save(model.state_dict(), model_dir / "weights.th")
    return model_dir
