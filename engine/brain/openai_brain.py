"""OpenAIBrain: decisions from any server that speaks the OpenAI chat completions API.

LM Studio, the llama.cpp server (C++ or llama-cpp-python's ``llama_cpp.server``), vLLM
and hosted APIs speak it. The answer streams (server-sent events) and is constrained by
the answer's JSON schema: ``response_format`` ``json_schema`` (the OpenAI form); a
server that refuses it (llama-cpp-python's server only knows ``json_object`` with a
``schema``) is asked in that form from then on.

The API key comes from the environment (``TAPEDECK_OPENAI_API_KEY``, else
``OPENAI_API_KEY``); it is sent as a bearer token and never written anywhere.
Every request has a connect and read timeout, and a streamed answer a total deadline.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from engine.brain.llm import Completion, LLMBrain, LLMFault
from engine.brain.prompt import Prompt

KEY_ENVS = ("TAPEDECK_OPENAI_API_KEY", "OPENAI_API_KEY")
DEFAULT_HOST = "http://127.0.0.1:8080/v1"


def api_key() -> str | None:
    for name in KEY_ENVS:
        value = os.environ.get(name)
        if value:
            return value
    return None


class OpenAIBrain(LLMBrain):
    name = "openai"

    def __init__(
        self,
        model: str | None = None,
        *,
        host: str | None = None,
        timeout: float = 120.0,
        first_call_timeout: float | None = None,
        connect_timeout: float = 5.0,
        retries: int = 1,
        options: Mapping[str, Any] | None = None,
        timeframe_ns: int | None = None,
        anonymise: bool = False,
        gate: bool = True,
    ) -> None:
        super().__init__(
            model or "",
            retries=retries,
            options=options,
            timeframe_ns=timeframe_ns,
            anonymise=anonymise,
            gate=gate,
            timeout=timeout,
            first_call_timeout=first_call_timeout,
        )
        self.host = (host or os.environ.get("OPENAI_BASE_URL") or DEFAULT_HOST).rstrip("/")
        self.connect_timeout = float(connect_timeout)
        headers = {"Accept": "application/json"}
        key = api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(
            base_url=self.host,
            headers=headers,
            timeout=self._httpx_timeout(float(timeout)),
        )
        self.format_style = "json_schema"  # becomes "json_object" for servers that need it

    def _httpx_timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=min(self.connect_timeout, seconds))

    # -- availability -------------------------------------------------------------------
    def available_models(self) -> list[str]:
        """The model ids the server lists; raises LLMFault."""
        try:
            reply = self.client.get("/models")
        except httpx.HTTPError as exc:
            raise LLMFault(self._unreachable(exc), retry=True) from None
        if reply.status_code != 200:
            raise LLMFault(f"{self.host}/models answered HTTP {reply.status_code}", retry=True)
        try:
            return [str(m["id"]) for m in reply.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise LLMFault(f"{self.host}/models answered no list", retry=True) from None

    def check(self) -> str | None:
        """None when the server answers and has the model (the first one it lists when no
        model was named), else the reason."""
        try:
            models = self.available_models()
        except LLMFault as fault:
            return fault.reason
        if not self.model:
            if not models:
                return f"the OpenAI-compatible server at {self.host} lists no model"
            self.model = models[0]
            return None
        if self.model not in models:
            listed = ", ".join(models[:5]) or "none"
            return f"the server at {self.host} has no model {self.model!r} (it has: {listed})"
        return None

    def identity(self) -> str:
        return f"{self.model}@{self.host}"

    def _unreachable(self, exc: BaseException) -> str:
        return (
            f"OpenAI-compatible server unreachable at {self.host} ({type(exc).__name__}): "
            "start it or pass --host http://HOST:PORT/v1"
        )

    # -- one call -------------------------------------------------------------------------
    def _body(self, prompt: Prompt, options: dict[str, Any]) -> dict[str, Any]:
        if self.format_style == "json_schema":
            fmt: dict[str, Any] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": prompt.schema, "strict": True},
            }
        else:
            fmt = {"type": "json_object", "schema": prompt.schema}
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt.text}],
            "stream": True,
            "temperature": float(options["temperature"]),
            "max_tokens": int(options["num_predict"]),
            "response_format": fmt,
        }
        if options.get("seed") is not None:
            body["seed"] = int(options["seed"])
        return body

    def _complete(
        self,
        prompt: Prompt,
        options: dict[str, Any],
        on_text: Callable[[str], None],
    ) -> Completion:
        timeout = self.call_timeout_s or self.timeout or 120.0
        deadline = time.monotonic() + timeout  # the asking again in the other form included
        for _ in range(2):
            try:
                return self._stream(prompt, options, on_text, deadline, timeout)
            except _FormatRefused:
                self.format_style = "json_object"
        raise LLMFault("the server refuses both forms of response_format", retry=False)

    def _stream(
        self,
        prompt: Prompt,
        options: dict[str, Any],
        on_text: Callable[[str], None],
        deadline: float,
        timeout: float,
    ) -> Completion:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LLMFault(f"no answer within the {timeout:g}s timeout", retry=False)
        parts: list[str] = []
        tokens = 0
        finish: str | None = None
        usage: dict[str, Any] = {}
        start = time.perf_counter()
        try:
            with self.client.stream(
                "POST",
                "/chat/completions",
                json=self._body(prompt, options),
                timeout=self._httpx_timeout(left),
            ) as reply:
                if reply.status_code != 200:
                    self._refused(reply)
                done = False
                for data in _events(reply.iter_lines()):
                    if data == "[DONE]":
                        done = True
                        break
                    chunk = _chunk(data)
                    if chunk.get("usage"):
                        usage = chunk["usage"]
                    for choice in chunk.get("choices") or ():
                        piece = (choice.get("delta") or {}).get("content") or ""
                        if piece:
                            tokens += 1
                            parts.append(piece)
                            on_text("".join(parts))
                        finish = choice.get("finish_reason") or finish
                    if time.monotonic() > deadline:
                        raise LLMFault(f"no complete answer within {timeout:g}s", retry=False)
                if not done and finish is None:
                    raise LLMFault(
                        f"stream ended before the answer was done (truncated after "
                        f"{len(''.join(parts))} characters)",
                        retry=True,
                    )
        except httpx.TimeoutException:
            raise LLMFault(f"no answer within the {timeout:g}s timeout", retry=False) from None
        except httpx.ConnectError as exc:
            raise LLMFault(self._unreachable(exc), retry=True) from None
        except httpx.HTTPError as exc:
            raise LLMFault(
                f"broken stream ({type(exc).__name__}: {str(exc)[:120]})", retry=True
            ) from None
        return Completion(
            "".join(parts),
            int(usage.get("completion_tokens") or tokens),
            finish,
            time.perf_counter() - start,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            reused_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
        )

    def _refused(self, reply: httpx.Response) -> None:
        code = reply.status_code
        text = reply.read().decode("utf-8", "replace")[:300]
        # (llama-cpp-python's server says so with a 500)
        refused = code in (400, 422, 500) and "response_format" in text
        if refused and self.format_style == "json_schema":
            raise _FormatRefused
        try:
            message = json.loads(text)["error"]
            message = message.get("message", message) if isinstance(message, dict) else message
        except (ValueError, KeyError, TypeError):
            message = text.strip()[:120]
        if code in (401, 403):
            raise LLMFault(
                f"HTTP {code} from {self.host}: set the API key in ${KEY_ENVS[0]}", retry=False
            )
        if code == 404:
            raise LLMFault(f"HTTP 404 from {self.host}: no model {self.model!r}?", retry=False)
        raise LLMFault(f"HTTP {code} from {self.host}: {message}", retry=code >= 500 or code == 429)

    def close(self) -> None:
        self.client.close()


class _FormatRefused(Exception):
    """The server does not take response_format json_schema."""


def _events(lines: Iterator[str]) -> Iterator[str]:
    """The data of each server-sent event (one ``data:`` line per event here)."""
    for line in lines:
        if line.startswith("data:"):
            yield line[5:].strip()
        elif line.strip() and not line.startswith((":", "event:", "id:", "retry:")):
            raise LLMFault(f"broken stream (not an event line: {line[:60]!r})", retry=True)


def _chunk(data: str) -> dict[str, Any]:
    try:
        chunk = json.loads(data)
    except ValueError:
        raise LLMFault(f"broken stream (not JSON: {data[:60]!r})", retry=True) from None
    if not isinstance(chunk, dict):
        raise LLMFault(f"broken stream (not a chunk: {data[:60]!r})", retry=True)
    if "error" in chunk:
        raise LLMFault(f"error in the middle of the stream: {chunk['error']}", retry=True)
    return chunk
