"""Keeping credentials out of what regbench writes and shows.

A model YAML may put a password in ``base_url`` (``http://user:${PW}@host/v1``) or the API key
in a URL or an option through ``${VAR}``, and a server may echo the ``Authorization`` header in
an error. results.json, samples.jsonl, the cache and messages pass through these functions,
which do string work only (a URL with credentials may not parse).
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from regbench.spec import ModelSpec

T = TypeVar("T")

MASK = "***"


def url_without_userinfo(url: str) -> str:
    """``url`` with its ``user:password@`` shown as ``***@``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = f"{MASK}@" + netloc.rpartition("@")[2]
    return f"{scheme}{sep}{netloc}{slash}{path}"


def shown_url(url: str, secret: str | None) -> str:
    """A URL as messages show it: no ``user:password@`` or query (either may hold credentials), no
    ``secret`` (``${VAR}`` may put an API key in the path)."""
    return without_secret(url_without_userinfo(url).split("?")[0].split("#")[0], secret)


def without_secret(value: T, secret: str | None) -> T:
    """``value`` (a string, or JSON-like dicts and lists of them) with every occurrence of ``secret`` masked."""
    if not secret:
        return value
    if isinstance(value, str):
        return value.replace(secret, MASK)  # type: ignore[return-value]
    if isinstance(value, dict):
        return {k: without_secret(v, secret) for k, v in value.items()}  # type: ignore[return-value]
    if isinstance(value, list):
        return [without_secret(v, secret) for v in value]  # type: ignore[return-value]
    return value


def api_key(model: ModelSpec) -> str | None:
    """The API key as set in the environment variable the model spec names (``None`` when unset)."""
    return os.environ.get(model.api_key_env)


def model_config(model: ModelSpec) -> dict[str, Any]:
    """The model spec as results.json records it: ``user:password@`` in ``base_url`` hidden, the API key masked."""
    # the lm-eval adapter's fields only where set: other models' results.json stay as they were
    unset = {name for name in ("lm_eval_model", "model_args") if getattr(model, name) is None}
    config = model.model_dump(mode="json", exclude=unset)
    if isinstance(config.get("base_url"), str):
        config["base_url"] = url_without_userinfo(config["base_url"])
    elif isinstance(config.get("base_url"), list):
        config["base_url"] = [
            url_without_userinfo(url) if isinstance(url, str) else {**url, "url": url_without_userinfo(url["url"])}
            for url in config["base_url"]
        ]
    return without_secret(config, api_key(model))
