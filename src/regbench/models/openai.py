"""Any OpenAI-compatible chat-completions server (vLLM, SGLang, lmdeploy, TGI, ...), over httpx.

Concurrency is bounded twice: by the runner (the adapter's ``concurrency``) and by the
adapter itself, which lends each request one single-connection client from an idle list
per ``base_url``, so at most ``concurrency`` connections are open per server and none waits
in a connection pool while another sits idle. Several ``base_url`` values are used round
robin; one that refuses connections or lets them time out is set aside for a while. Entries
written ``{url: ..., concurrency: 16}`` bound each server on its own: a request then goes to the
next server with a free slot, and the model's bound is their sum. 429 (honouring
``Retry-After``), 408/409/425, any 5xx, timeouts, connection errors and unreadable JSON are
retried with exponential backoff and jitter; after ``max_retries`` the request comes back
as an error and the run goes on. The API key is read from the environment variable the model
YAML names and is sent only in the ``Authorization`` header: it is never part of a message,
a cache key, an error message or a file.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from regbench.errors import ModelUnavailableError, SpecError
from regbench.models.base import ModelAdapter, Request, spec_file
from regbench.models.images import image_data_urls
from regbench.redact import shown_url, without_secret
from regbench.spec import ModelSpec
from regbench.types import Message, Response

_RETRY_STATUS = {408, 409, 425, 429}  # and every 5xx
_NOT_THERE = {404, 405, 501}  # no such path or method: base_url does not lead to an OpenAI-compatible API
_DEAD_FOR = 30.0  # seconds a base_url that refused connections is skipped


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class OpenAIAdapter(ModelAdapter):
    """Chat completions with images as data URLs, bounded concurrency, retries and round robin."""

    sends_images = True

    def __init__(self, spec: ModelSpec, *, concurrency: int | None = None) -> None:
        super().__init__(spec, concurrency=concurrency)
        if not spec.base_urls:
            raise SpecError(spec_file(spec), "base_url", "the openai adapter needs the server's URL (`base_url`)")
        self._urls = [u.rstrip("/") for u in spec.base_urls]
        # Per-server bounds ({url, concurrency} entries): then the model's bound is their sum, and a
        # server without its own takes the model's (or --concurrency).
        own = [limit for _, limit in spec.endpoints]
        self._limits = None if all(limit is None for limit in own) else [limit or self.concurrency for limit in own]
        if self._limits is not None:
            self.concurrency = sum(self._limits)
        self._in_flight = [0] * len(self._urls)
        self._free: asyncio.Condition | None = None
        for url in self._urls:
            self._check_url(url)
        self._next = itertools.cycle(range(len(self._urls)))
        self._dead_until = [0.0] * len(self._urls)
        # One connection per client: httpx's pool does work proportional to its size on every
        # request (one pool of 64 cost 6.5 ms of CPU per request; see docs/benchmarks.md).
        self._idle: list[list[httpx.AsyncClient]] = [[] for _ in self._urls]
        self._clients: list[httpx.AsyncClient] = []
        self._slots: asyncio.Semaphore | None = None
        self._ssl: ssl.SSLContext | None = None  # built once: each default context costs ~20 ms
        self._answered = False  # a 404 before any answer is a wrong endpoint, after one a sample's problem
        self.backoff_base = float(spec.options.get("backoff_base", 0.5))
        self.backoff_max = float(spec.options.get("backoff_max", 30.0))

    # -- lifecycle ------------------------------------------------------------------------
    def _key(self) -> str | None:
        # Without the line break a secret file or a Kubernetes secret often ends with (httpx refuses it).
        return os.environ.get(self.spec.api_key_env, "").strip() or None

    def _headers(self) -> dict[str, str]:
        key = self._key()
        if key is None:
            return {}
        if not (key.isascii() and key.isprintable()):
            raise ModelUnavailableError(
                f"model {self.spec.model}: the API key in {self.spec.api_key_env} holds characters an HTTP header "
                "cannot carry (not ASCII, or control characters); check how the variable is set"
            )
        return {"Authorization": f"Bearer {key}"}

    def _new_client(self) -> httpx.AsyncClient:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        client = httpx.AsyncClient(timeout=self.spec.timeout, limits=limits, headers=self._headers(), verify=self._ssl)
        self._clients.append(client)
        return client

    async def start(self) -> None:
        """Check that a server answers ``GET /models`` and serves the model; raise ModelUnavailableError
        if none answers, a SpecError if the URL has no OpenAI-compatible API or the model is not served."""
        self._slots = asyncio.Semaphore(self.concurrency)
        self._free = asyncio.Condition()
        problems = []
        for index, url in enumerate(self._urls):
            client = self._new_client()
            try:
                seconds = min(10.0, self.spec.timeout)
                reply = await _within(client.get(f"{url}/models", timeout=seconds), seconds)
            except httpx.HTTPError as exc:
                problems.append(f"{self._shown(url)}: {type(exc).__name__}")
                self._set_aside(index, exc)
                continue
            self._idle[index].append(client)
            if reply.status_code in (401, 403):
                await self.close()
                key_state = "is set" if self._key() else "is not set"
                raise ModelUnavailableError(
                    f"model {self.spec.model}: {self._shown(url)} refuses the API key (HTTP {reply.status_code}); "
                    f"the key comes from the environment variable {self.spec.api_key_env}, which {key_state}."
                )
            if 300 <= reply.status_code < 400:
                problems.append(f"{self._shown(url)}: {self._moved(reply)}")
            elif reply.status_code in _NOT_THERE:
                await self.close()
                raise self._wrong_path(url, f"GET {self._shown(url)}/models", reply)
            elif reply.status_code < 500:
                try:
                    self._check_served(url, reply)
                except SpecError:
                    await self.close()
                    raise
                return
            else:
                problems.append(f"{self._shown(url)}: HTTP {reply.status_code}")
        await self.close()
        hint = f" {self.spec.start_hint}" if self.spec.start_hint else ""
        raise ModelUnavailableError(
            f"model {self.spec.model}: no OpenAI-compatible server answers ({'; '.join(problems)}).{hint}"
        )

    def _wrong_path(self, url: str, what: str, reply: httpx.Response) -> SpecError:
        """The model YAML's base_url does not lead to an OpenAI-compatible API (exit 2, not a retry)."""
        path = httpx.URL(url).path.rstrip("/")
        hint = "" if path.endswith("/v1") else f"; OpenAI-compatible servers serve it under /v1: try {url}/v1"
        return SpecError(
            spec_file(self.spec),
            "base_url",
            f"{what} answers HTTP {reply.status_code}{self._excerpt(reply)}: no OpenAI-compatible API "
            f"at this URL{hint}",
        )

    def _check_served(self, url: str, reply: httpx.Response) -> None:
        """A 2xx model list must name the model this YAML asks for (else every request would fail)."""
        if not 200 <= reply.status_code < 300:  # some servers guard the list itself: nothing to compare
            return
        try:
            ids = [str(entry["id"]) for entry in reply.json()["data"]]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            raise SpecError(
                spec_file(self.spec),
                "base_url",
                f"GET {self._shown(url)}/models answers something that is not an OpenAI model list"
                f"{self._excerpt(reply)}: no OpenAI-compatible API at this URL",
            ) from None
        name = self.spec.model_name or self.spec.model
        if name not in ids:
            served = ", ".join(repr(i) for i in ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
            field = "model_name" if self.spec.model_name else "model"
            raise SpecError(
                spec_file(self.spec),
                field,
                f"{name!r} is not a model {self._shown(url)} serves (it serves {served or 'none'}); "
                "set model_name to one of them",
            )

    async def close(self) -> None:
        clients, self._clients = self._clients, []
        self._idle = [[] for _ in self._urls]
        for client in clients:
            await client.aclose()

    # -- requests -------------------------------------------------------------------------
    def payload(self, request: Request) -> dict[str, Any]:
        """The JSON body of a chat-completions call (greedy unless the spec says otherwise)."""
        gen = request.generation
        body: dict[str, Any] = {
            "model": self.spec.model_name or self.spec.model,
            "messages": [self._message(m) for m in request.messages],
            "max_tokens": gen.max_tokens,
            "temperature": gen.temperature,
        }
        if gen.top_p is not None:
            body["top_p"] = gen.top_p
        if gen.stop:
            body["stop"] = gen.stop
        if gen.seed is not None:
            body["seed"] = gen.seed
        if gen.logprobs:
            body["logprobs"] = True
        body.update(self.spec.options.get("extra_body", {}))
        return body

    def _message(self, message: Message) -> dict[str, Any]:
        if not message.images:
            return {"role": message.role, "content": message.content}
        parts: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": url}}
            for path in message.images
            for url in image_data_urls(path, self.spec.options)
        ]
        parts.append({"type": "text", "text": message.content})
        return {"role": message.role, "content": parts}

    async def generate(self, request: Request) -> Response:
        if self._slots is None:
            await self.start()
        assert self._slots is not None
        try:
            body = self.payload(request)
        except (OSError, ValueError) as exc:
            return Response(error=f"cannot build the request: {exc}")
        last = "no attempt made"
        for attempt in range(self.spec.max_retries + 1):
            index = 0
            try:
                async with self._endpoint() as index:
                    return await self._post(index, body)
            except _Retryable as exc:
                last = str(exc)
                delay = exc.retry_after
            except (
                httpx.ConnectError,
                httpx.RemoteProtocolError,
                httpx.ReadError,
                httpx.WriteError,
                httpx.DecodingError,
            ) as exc:
                last = f"{type(exc).__name__} from {self._shown(self._urls[index])}"
                self._set_aside(index, exc)
                delay = None
            except httpx.TimeoutException as exc:
                last = f"{type(exc).__name__} after {self.spec.timeout:g} s"
                self._set_aside(index, exc)
                delay = None
            if attempt < self.spec.max_retries:
                await asyncio.sleep(self._delay(attempt, delay))
        return Response(error=f"failed after {self.spec.max_retries + 1} attempts: {last}")

    async def _post(self, index: int, body: dict[str, Any]) -> Response:
        url = self._urls[index]
        idle = self._idle[index]
        client = idle.pop() if idle else self._new_client()
        try:
            reply = await _within(client.post(f"{url}/chat/completions", json=body), self.spec.timeout)
        finally:
            idle.append(client)
        status = reply.status_code
        if status in _RETRY_STATUS or status >= 500:
            reason = f"HTTP {status} from {self._shown(url)}{self._excerpt(reply)}"
            raise _Retryable(reason, _retry_after(reply.headers.get("retry-after")))
        if 300 <= status < 400:
            return Response(error=self._moved(reply))
        if status in _NOT_THERE and not self._answered:  # no request can succeed: stop the run, not each sample
            raise self._wrong_path(url, f"POST {self._shown(url)}/chat/completions", reply)
        if status >= 400:
            return Response(error=f"HTTP {status} from {self._shown(url)}{self._excerpt(reply)}")
        try:
            data = reply.json()
            text = _content_text(data["choices"][0]["message"]["content"])
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError, TypeError) as exc:
            shown = self._shown(url)
            raise _Retryable(f"unreadable response from {shown} ({type(exc).__name__}){self._excerpt(reply)}") from None
        usage = data.get("usage")
        self._answered = True
        logprobs = _token_logprobs(data["choices"][0]) if body.get("logprobs") else None
        return Response(text=text, usage=usage if isinstance(usage, dict) else {}, logprobs=logprobs)

    def _excerpt(self, reply: httpx.Response) -> str:
        """The start of a body that is not an answer (the server's reason), for the sample's error.
        Some servers echo the Authorization header back: the key is masked, then the text cut (a key
        cut in two would escape the mask)."""
        text = " ".join(without_secret(reply.text, self._key()).split())[:300]
        return f": {text}" if text else ""

    def _moved(self, reply: httpx.Response) -> str:
        # Not followed: httpx would resend a POST answered 301/302 as a GET; the user fixes base_url.
        where = self._shown(reply.headers.get("location", "(no Location header)"))
        return f"HTTP {reply.status_code} to {where}: point base_url at where the server moved"

    def _shown(self, url: str) -> str:
        return shown_url(url, self._key())

    def _check_url(self, url: str) -> None:
        # Else no scheme reads as "no server answers (UnsupportedProtocol)", an unparsable URL raises
        # from httpx mid-start, and a query would be sent before the path (...?q=1/chat/completions).
        try:
            parsed = httpx.URL(url)
            usable = parsed.scheme in ("http", "https") and bool(parsed.host) and not parsed.query
        except httpx.InvalidURL:
            usable = False
        if not usable or "#" in url:
            raise SpecError(
                spec_file(self.spec),
                "base_url",
                f"{self._shown(url)} is not an http(s) URL without a query (e.g. http://127.0.0.1:8000/v1)",
            )

    def _set_aside(self, index: int, exc: Exception) -> None:
        # Refused, or no answer to connecting at all (a host that is down drops the attempts).
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout) and len(self._urls) > 1:
            self._dead_until[index] = time.monotonic() + _DEAD_FOR

    @asynccontextmanager
    async def _endpoint(self) -> AsyncIterator[int]:
        """A server to send one request to, holding one of its slots while the request runs. Without
        per-server limits, round robin under the model's one bound; with them, the next server (round
        robin) that has a free slot, waiting for one when all are busy."""
        if self._limits is None:
            index = self._pick()
            async with self._slots:  # type: ignore[union-attr]  # set by start()
                yield index
            return
        assert self._free is not None  # set by start()
        async with self._free:
            while (free := self._pick_free()) is None:
                await self._free.wait()
            self._in_flight[free] += 1
        try:
            yield free
        finally:
            async with self._free:
                self._in_flight[free] -= 1
                self._free.notify()

    def _pick_free(self) -> int | None:
        """The next server in round robin that is not set aside and has a free slot; when every server is
        set aside, the soonest back that has one; ``None`` when every usable server is busy."""
        assert self._limits is not None
        now = time.monotonic()
        for _ in range(len(self._urls)):
            index = next(self._next)
            if self._dead_until[index] <= now and self._in_flight[index] < self._limits[index]:
                return index
        if all(until > now for until in self._dead_until):
            free = [i for i in range(len(self._urls)) if self._in_flight[i] < self._limits[i]]
            return min(free, key=lambda i: self._dead_until[i]) if free else None
        return None

    def _pick(self) -> int:
        now = time.monotonic()
        for _ in range(len(self._urls)):
            index = next(self._next)
            if self._dead_until[index] <= now:
                return index
        return min(range(len(self._urls)), key=lambda i: self._dead_until[i])  # all dead: the soonest back

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        return min(self.backoff_max, self.backoff_base * 2**attempt) * random.uniform(0.5, 1.0)

    def fingerprint(self) -> str:
        identity = json.loads(super().fingerprint())
        identity["options"] = {k: v for k, v in self.spec.options.items() if not k.startswith("backoff")}
        return json.dumps(identity, sort_keys=True)


def _content_text(content: Any) -> str:
    """An answer's text: null (a tool-call-only answer) is "", a list of parts (some servers send
    ``[{"type": "text", "text": ...}, ...]``) its text parts joined; another type is unreadable, not ""."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, dict) for part in content):
        texts = [part.get("text") for part in content if part.get("type") == "text"]
        if all(isinstance(text, str) for text in texts):
            return "".join(texts)
    raise TypeError(f"message content of type {type(content).__name__}")


def _token_logprobs(choice: Any) -> list[float] | None:
    """The answer's token log-probabilities from ``choice.logprobs.content[*].logprob``, or ``None`` when
    the server sent none or sent them in another shape (the likelihood-based metrics then say so)."""
    found = choice.get("logprobs") if isinstance(choice, dict) else None
    content = found.get("content") if isinstance(found, dict) else None
    if not isinstance(content, list):
        return None
    values = [entry.get("logprob") if isinstance(entry, dict) else None for entry in content]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and v <= 0 for v in values):
        return None
    return [float(v) for v in values]


async def _within(request: Awaitable[httpx.Response], seconds: float) -> httpx.Response:
    """The reply, or ReadTimeout after ``seconds`` in all: httpx's own timeout bounds each read, so a
    body that trickles in (a proxy's keep-alive bytes) would otherwise hold the attempt forever."""
    try:  # a second's grace: httpx's own timeouts come first and name the phase (ConnectTimeout)
        return await asyncio.wait_for(request, seconds + 1.0)
    except asyncio.TimeoutError:
        raise httpx.ReadTimeout(f"no complete answer within {seconds:g} s") from None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number of seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None
