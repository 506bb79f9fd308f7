"""Model adapters: OpenAI-compatible HTTP endpoints, local transformers checkpoints, lm-eval models, replay."""

from regbench.models.base import ADAPTERS, Message, ModelAdapter, Request, Response, build_adapter

ADAPTERS.add("replay", "regbench.models.replay:ReplayAdapter")
ADAPTERS.add("openai", "regbench.models.openai:OpenAIAdapter")
ADAPTERS.add("transformers", "regbench.models.hf:TransformersAdapter")
ADAPTERS.add("lm-eval", "regbench.models.lmeval:LMEvalAdapter")

__all__ = ["ADAPTERS", "Message", "ModelAdapter", "Request", "Response", "build_adapter"]
