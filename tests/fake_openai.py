"""A local HTTP server on 127.0.0.1 that speaks the OpenAI chat completions API, with faults.

Real sockets and real server-sent events, so tests drive OpenAIBrain end to end.
Endpoints: ``GET /v1/models``, ``POST /v1/chat/completions`` (streamed). Each chat call
consumes the next behaviour queued with :meth:`FakeOpenAI.queue` (default "ok"):

- ``ok``: the answer in small pieces, ``finish_reason`` "stop", then ``[DONE]``
- ``hang``: accept the request and send nothing until released (past any timeout)
- ``http500``: an error status with an OpenAI error body
- ``garbage``: a data line that is not JSON
- ``truncated``: part of the answer, then the connection drops
- ``length``: part of the answer, then ``finish_reason`` "length"

``json_object_only`` makes it answer 422 to ``response_format`` ``json_schema`` as
llama-cpp-python's server does. The answer is tests.fake_ollama's default answer for
the schema the request carries.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fake_ollama import default_answer

PIECE = 7


class FakeOpenAI:
    def __init__(self, models: tuple[str, ...] = ("gemma",), json_object_only: bool = False):
        self.models = models
        self.json_object_only = json_object_only
        self.behaviours: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def queue(self, *behaviours: str) -> None:
        self.behaviours.extend(behaviours)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": m} for m in self.owner.models]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        owner = self.owner
        owner.requests.append(body)
        owner.headers.append(dict(self.headers))
        fmt = body.get("response_format") or {}
        if owner.json_object_only and fmt.get("type") != "json_object":
            self._json(422, {"error": {"message": "response_format: type must be json_object"}})
            return
        behaviour = owner.behaviours.popleft() if owner.behaviours else "ok"
        if behaviour == "hang":
            owner.release.wait(30)
            return
        if behaviour == "http500":
            self._json(500, {"error": {"message": "model crashed", "type": "server_error"}})
            return
        schema = fmt.get("schema") or fmt.get("json_schema", {}).get("schema")
        text = json.dumps(default_answer({"format": schema}))
        pieces = [text[i : i + PIECE] for i in range(0, len(text), PIECE)]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        if behaviour == "garbage":
            self._event("<html>502 Bad Gateway</html>")
            return
        if behaviour in ("truncated", "length"):
            pieces = pieces[: len(pieces) // 2]
        for piece in pieces:
            self._event(json.dumps(_chunk(body["model"], {"content": piece}, None)))
        if behaviour == "truncated":
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        finish = "length" if behaviour == "length" else "stop"
        final = _chunk(body["model"], {}, finish)
        final["usage"] = {"prompt_tokens": 321, "completion_tokens": len(pieces)}
        self._event(json.dumps(final))
        self._event("[DONE]")

    def _event(self, data: str) -> None:
        self.wfile.write(f"data: {data}\n\n".encode())
        self.wfile.flush()


def _chunk(model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
