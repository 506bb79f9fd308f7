"""A small OpenAI-compatible chat-completions server for tests and benchmarks (stdlib only).

It answers ``echo: <last user text>``, after ``--latency`` seconds. A user text containing
``chaos:KIND:N`` makes the first N attempts of that exact request misbehave, KIND one of
``500``, ``404``, ``429`` (with Retry-After: 0.3), ``401`` (an error body that echoes the prompt and
the Authorization header, as careless servers do), ``garbage`` (200 with a body that is not
JSON), ``reset`` (the connection is dropped), ``slow`` (no answer for 30 s), ``trickle``
(a 200 whose body, JSON after 150 spaces, comes one byte every 0.1 s, as from a keep-alive
proxy), ``moved`` (a 307 to another host), ``gzip`` (a body that says gzip and is not) or
``error200`` (an error object in a 200).
A ``--script`` JSON file holds rules ``{"match": TEXT, "reply": TEXT, "chaos": KIND,
"times": N}`` for prompts that cannot carry a chaos word (bundled task YAMLs): the first
rule whose ``match`` occurs in the last user text answers ``reply`` instead of the echo
and/or misbehaves like ``chaos`` on the first N attempts; a rule's ``content`` (any JSON
value) replaces the answer's whole ``content``; a rule's ``replies`` (a list) answers
``replies[seed % len(replies)]`` (sampling with a seed). A request with ``logprobs: true`` gets
``choices[0].logprobs.content``, one entry per whitespace-separated token of the answer with
logprob ``rule["logprob"]`` (default -0.25), unless the rule says ``"no_logprobs": true`` (a
backend that sends none). Every request is logged as a JSON line to
``--log``: the text, the status sent, how many images it carried, the Authorization header,
and how many requests were in flight when it arrived. ``--redirect URL`` makes every
request answer 301 to URL + its path. The API lives under ``/v1`` (anything else is a 404, as
on a real server); ``GET /v1/models`` lists ``--served`` (default ``test-model`` and ``m``, the names tests use), and
``--no-models`` makes it a 404 (a server that is not OpenAI-compatible).

Run: python openai_server.py --port 0 --ready FILE [--latency 0.05] [--log FILE] [--script FILE]
[--require-key KEY] [--redirect URL] [--served ID,ID] [--no-models]
(the chosen port is written to FILE when the server listens).
"""

from __future__ import annotations

import argparse
import json
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen backlog: at least the clients' concurrency

    def __init__(
        self, address: tuple[str, int], latency: float, log: Path | None, script: list[dict[str, Any]]
    ) -> None:
        super().__init__(address, Handler)
        self.latency = latency
        self.script = script
        self.require_key: str | None = None
        self.redirect: str | None = None
        self.served: list[str] = ["test-model", "m"]
        self.models = True
        self.log = log.open("a", buffering=1) if log else None
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.in_flight = 0

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()

    def record(self, entry: dict[str, Any]) -> None:
        if self.log is not None:
            with self.lock:
                self.log.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # keep stderr quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def trickle(self, content: str) -> None:
        reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
        body = b" " * 150 + json.dumps(reply).encode()  # leading whitespace is valid JSON
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for index in range(150):
                self.wfile.write(body[index : index + 1])
                self.wfile.flush()
                time.sleep(0.1)
            self.wfile.write(body[150:])
        except OSError:  # the client gave up
            self.close_connection = True

    def send_json(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        key = self.server.require_key
        if self.server.redirect is not None:
            self.send_json(301, b"", {"Location": self.server.redirect + self.path})
        elif key is not None and self.headers.get("Authorization") != f"Bearer {key}":
            self.send_json(401, b'{"error": "invalid api key"}')
        elif self.path.rstrip("/") == "/v1/models" and self.server.models:
            data = [{"id": name, "object": "model"} for name in self.server.served]
            self.send_json(200, json.dumps({"object": "list", "data": data}).encode())
        else:
            self.send_json(404, b'{"error": "not found"}')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        if self.server.redirect is not None:
            self.send_json(301, b"", {"Location": self.server.redirect + self.path})
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.send_json(404, b'{"error": "not found"}')
            return
        server = self.server
        with server.lock:
            server.in_flight += 1
            in_flight = server.in_flight
        try:
            self.answer(body, in_flight)
        finally:
            with server.lock:
                server.in_flight -= 1

    def answer(self, body: dict[str, Any], in_flight: int) -> None:
        server = self.server
        last = next(m for m in reversed(body["messages"]) if m["role"] == "user")
        content = last["content"]
        if isinstance(content, list):
            text = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            images = sum(p.get("type") == "image_url" for p in content)
        else:
            text, images = content, 0
        key = json.dumps(body["messages"], sort_keys=True)
        with server.lock:
            server.attempts[key] += 1
            attempt = server.attempts[key]
        status = 200
        rule = next((r for r in server.script if r["match"] in text), {})
        chaos = next((w for w in text.split() if w.startswith("chaos:")), None)
        if chaos is not None:
            _, kind, times = chaos.split(":")
        else:
            kind, times = rule.get("chaos"), rule.get("times", 0)
        if kind is not None and attempt <= int(times):
            codes = {
                "500": 500,
                "404": 404,
                "429": 429,
                "401": 401,
                "garbage": 201,
                "reset": 0,
                "slow": 1,
                "trickle": 2,
            }
            status = {**codes, "moved": 307, "gzip": 202, "error200": 203}[kind]
        entry = {
            "text": text,
            "status": status,
            "images": images,
            "auth": self.headers.get("Authorization"),
            "in_flight": in_flight,
            "model": body.get("model"),
            "max_tokens": body.get("max_tokens"),
            "temperature": body.get("temperature"),
            "top_p": body.get("top_p"),
            "seed": body.get("seed"),
            "logprobs": body.get("logprobs"),
            "messages": len(body["messages"]),
            "roles": [m["role"] for m in body["messages"]],
            "assistant": [m["content"] for m in body["messages"] if m["role"] == "assistant"],
            "all_images": sum(
                p.get("type") == "image_url"
                for m in body["messages"]
                if isinstance(m["content"], list)
                for p in m["content"]
            ),
            "system": next((m["content"] for m in body["messages"] if m["role"] == "system"), None),
            "time": time.time(),
        }
        server.record(entry)
        if status == 0:  # drop the connection without an answer
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if status == 1:
            time.sleep(30)
            return
        if status == 2:
            self.trickle(rule.get("reply", f"echo: {text}"))
            return
        time.sleep(server.latency)
        if status == 500:
            self.send_json(500, b'{"error": "internal: CUDA out of memory"}')
        elif status == 404:
            self.send_json(404, b'{"error": "no such route"}')
        elif status == 401:
            auth = self.headers.get("Authorization")
            self.send_json(401, json.dumps({"error": f"{text}: bad key: {auth}"}).encode())
        elif status == 429:
            self.send_json(429, b'{"error": "slow down"}', {"Retry-After": "0.3"})
        elif status == 201:
            self.send_json(200, b"<html>not json")
        elif status == 203:  # an error reported in a 200
            self.send_json(200, b'{"object": "error", "message": "model is still loading", "code": 503}')
        elif status == 202:  # a proxy's broken compression
            self.send_json(200, b"not gzip", {"Content-Encoding": "gzip"})
        elif status == 307:
            self.send_json(307, b"", {"Location": "https://elsewhere.example/v1/chat/completions"})
        else:
            content = rule["content"] if "content" in rule else rule.get("reply", f"echo: {text}")
            if "replies" in rule:
                content = rule["replies"][int(body.get("seed") or 0) % len(rule["replies"])]
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content}}
            if body.get("logprobs") and not rule.get("no_logprobs") and isinstance(content, str):
                logprob = rule.get("logprob", -0.25)
                choice["logprobs"] = {"content": [{"token": t, "logprob": logprob} for t in content.split()]}
            reply = {
                "id": "x",
                "object": "chat.completion",
                "choices": [choice],
                "usage": {"prompt_tokens": len(text.split()), "completion_tokens": 2},
            }
            self.send_json(200, json.dumps(reply).encode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--script", type=Path)
    parser.add_argument("--require-key", help="GET /models answers 401 unless this bearer key is sent")
    parser.add_argument("--redirect", help="every request answers 301 to this URL + the request's path")
    parser.add_argument("--served", default="test-model,m", help="the model ids GET /v1/models lists (commas)")
    parser.add_argument("--no-models", action="store_true", help="GET /v1/models answers 404")
    args = parser.parse_args()
    script = json.loads(args.script.read_text()) if args.script else []
    server = Server(("127.0.0.1", args.port), args.latency, args.log, script)
    server.require_key = args.require_key
    server.redirect = args.redirect
    server.served = args.served.split(",")
    server.models = not args.no_models
    args.ready.write_text(str(server.server_address[1]))
    server.serve_forever(poll_interval=0.05)


if __name__ == "__main__":
    main()
