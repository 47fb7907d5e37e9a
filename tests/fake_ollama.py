"""A local HTTP server on 127.0.0.1 that speaks Ollama's REST protocol, with faults.

Real sockets, real HTTP (chunked NDJSON streaming like Ollama), so tests drive the
official ``ollama`` client end to end. Endpoints: ``POST /api/chat`` (streamed NDJSON
or one JSON), ``GET /api/tags``, ``POST /api/show``; errors as ``{"error": "..."}``.

Each ``/api/chat`` call consumes the next behaviour queued with :meth:`FakeOllama.queue`
(default "ok"):

- ``ok``: the answer, streamed in small pieces, ``done_reason`` "stop"
- ``hang``: accept the request and send nothing until released (past any timeout)
- ``slow``: say nothing for ``slow_s`` seconds (a model loading), then answer as ``ok``
- ``http404`` / ``http500``: an error status with an Ollama error body
- ``midstream_error``: part of the answer, then an ``{"error": ...}`` line
- ``truncated``: part of the answer, then the connection drops (chunked body unfinished)
- ``no_done``: part of the answer, then a clean end of the body without a done line
- ``length``: part of the answer, then ``done`` with ``done_reason`` "length"
- ``malformed``: a complete stream whose text is not valid JSON
- ``garbage_line``: a stream line that is not JSON at all
- ``out_of_range``: valid JSON with nonsense values (size huge, negative stop)
- ``unknown_instrument``: valid JSON naming an instrument not in the batch
An unknown model name gets the 404 Ollama sends for a model that is not pulled.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIGEST = "sha256:" + "ab12" * 16
CREATED = "2024-05-01T12:00:00.000000Z"
PIECE = 9  # characters per streamed chunk

BEHAVIOURS = (
    "ok",
    "hang",
    "slow",
    "http404",
    "http500",
    "midstream_error",
    "truncated",
    "no_done",
    "length",
    "malformed",
    "garbage_line",
    "out_of_range",
    "unknown_instrument",
)


def default_answer(request: dict[str, Any]) -> dict[str, Any]:
    """A sensible answer for the instruments the request's schema asks about: the first
    opens long (when it may), the others hold."""
    props = request["format"]["properties"]
    answer: dict[str, Any] = {}
    for i, (name, item) in enumerate(props.items()):
        actions = item["properties"]["do"]["enum"]
        entry = next((a for a in ("long", "open_long") if a in actions), None)
        act = entry if i == 0 and entry is not None else "hold"
        plan: dict[str, Any] = {
            "why": 'RSI 28 is oversold below 30 and "momentum" turns up.\nGo long.',
            "do": act,
            "size": "medium",
        }
        if act == entry:
            plan.update(stop=1.5, target=3)
        answer[name] = plan
    return answer


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FakeOllama:
    def __init__(
        self,
        models: dict[str, str] | None = None,
        answer: Callable[[dict[str, Any]], dict[str, Any] | str] = default_answer,
    ) -> None:
        self.models = dict(models if models is not None else {"phi3:mini": DIGEST})
        self.answer = answer
        self.behaviours: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []  # every /api/chat body, in order
        self.release = threading.Event()
        self.slow_s = 1.0  # how long ``slow`` keeps quiet before answering
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> FakeOllama:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def queue(self, *behaviours: str) -> None:
        for b in behaviours:
            if b not in BEHAVIOURS:
                raise ValueError(f"unknown behaviour {b!r}")
        self.behaviours.extend(behaviours)

    def next_behaviour(self) -> str:
        try:
            return self.behaviours.popleft()
        except IndexError:
            return "ok"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout) or a connection dropped on purpose (truncated)
        # is part of the test, not a server failure worth a traceback.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOllama
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    # -- plumbing -------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        return json.loads(raw or b"{}")

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, payload: dict[str, Any] | str) -> None:
        line = payload if isinstance(payload, str) else json.dumps(payload)
        data = (line + "\n").encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- endpoints ------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path == "/api/tags":
            models = [
                {
                    "name": name,
                    "model": name,
                    "modified_at": CREATED,
                    "size": 2_176_178_913,
                    "digest": digest,
                    "details": {
                        "format": "gguf",
                        "family": "phi3",
                        "parameter_size": "3.8B",
                        "quantization_level": "Q4_0",
                    },
                }
                for name, digest in self.owner.models.items()
            ]
            self._json(200, {"models": models})
        elif self.path == "/":
            data = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            self._error(404, "404 page not found")

    def do_POST(self) -> None:
        body = self._body()
        if self.path == "/api/show":
            name = body.get("model", "")
            if name not in self.owner.models:
                self._error(404, f"model '{name}' not found")
                return
            self._json(
                200,
                {
                    "modelfile": f"FROM {name}",
                    "parameters": "stop <|end|>",
                    "template": "{{ .Prompt }}",
                    "details": {"format": "gguf", "family": "phi3"},
                    "model_info": {"general.architecture": "phi3"},
                    "capabilities": ["completion"],
                    "modified_at": CREATED,
                },
            )
        elif self.path == "/api/chat":
            self._chat(body)
        else:
            self._error(404, "404 page not found")

    def _chat(self, body: dict[str, Any]) -> None:
        owner = self.owner
        owner.requests.append(body)
        model = body.get("model", "")
        behaviour = owner.next_behaviour()
        if model not in owner.models or behaviour == "http404":
            self._error(404, f"model '{model}' not found, try pulling it first")
            return
        if behaviour == "hang":
            owner.release.wait(30)
            return
        if behaviour == "slow" and owner.release.wait(owner.slow_s):
            return  # the server stops
        if behaviour == "http500":
            self._error(500, "llama runner process has terminated: signal: killed")
            return
        text = self._answer_text(body, behaviour)
        pieces = [text[i : i + PIECE] for i in range(0, len(text), PIECE)] or [""]
        if not body.get("stream", True):
            self._json(200, self._final(model, "stop", len(pieces), content=text))
            return
        self._start_stream()
        half = max(1, len(pieces) // 2)
        cut = behaviour in ("midstream_error", "truncated", "no_done", "length", "garbage_line")
        for piece in pieces[:half] if cut else pieces:
            self._chunk(
                {
                    "model": model,
                    "created_at": CREATED,
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }
            )
        if behaviour == "midstream_error":
            self._chunk({"error": "an error was encountered while running the model"})
        elif behaviour == "truncated":
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        elif behaviour == "garbage_line":
            self._chunk("<html>502 Bad Gateway</html>")
        elif behaviour == "length":
            self._chunk(self._final(model, "length", half))
        elif behaviour != "no_done":
            self._chunk(self._final(model, "stop", len(pieces)))
        self._end_stream()

    def _answer_text(self, body: dict[str, Any], behaviour: str) -> str:
        if behaviour == "malformed":
            return '{"BTC": {"why": "RSI is low", "do": "open_lo'
        answer = self.owner.answer(body)
        if isinstance(answer, str):
            return answer
        if behaviour == "out_of_range":
            answer = json.loads(json.dumps(answer))
            first = next(iter(answer.values()))
            first["size"] = "huge"
            first["stop"] = -2.0
        elif behaviour == "unknown_instrument":
            answer = {"DOGE" if i == 0 else k: v for i, (k, v) in enumerate(answer.items())}
        return json.dumps(answer)

    @staticmethod
    def _final(model: str, reason: str, count: int, content: str = "") -> dict[str, Any]:
        return {
            "model": model,
            "created_at": CREATED,
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": reason,
            "total_duration": 1_500_000_000,
            "load_duration": 100_000_000,
            "prompt_eval_count": 400,
            "prompt_eval_duration": 400_000_000,
            "eval_count": count,
            "eval_duration": 1_000_000_000,
        }
