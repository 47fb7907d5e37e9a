"""OllamaBrain: decisions from a model served by Ollama, through the official client.

The client's default timeout is none (a call could hang for ever): here every request
has a connect and read timeout, and a streamed answer also has a total deadline.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import ollama
import pydantic

from engine.brain.llm import Completion, LLMBrain, LLMFault
from engine.brain.prompt import Prompt

DEFAULT_MODEL = "phi3:mini"
DEFAULT_HOST = "http://127.0.0.1:11434"


def resolve_host(host: str | None = None) -> str:
    return host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST


def _same_model(a: str, b: str) -> bool:
    def norm(name: str) -> str:
        return name if ":" in name else f"{name}:latest"

    return norm(a) == norm(b)


class OllamaBrain(LLMBrain):
    name = "ollama"

    def __init__(
        self,
        model: str | None = None,
        *,
        host: str | None = None,
        timeout: float = 120.0,
        first_call_timeout: float | None = None,
        connect_timeout: float = 5.0,
        keep_alive: str | float | None = "10m",
        retries: int = 1,
        options: Mapping[str, Any] | None = None,
        timeframe_ns: int | None = None,
        anonymise: bool = False,
        gate: bool = True,
    ) -> None:
        super().__init__(
            model or DEFAULT_MODEL,
            retries=retries,
            options=options,
            timeframe_ns=timeframe_ns,
            anonymise=anonymise,
            gate=gate,
            timeout=timeout,
            first_call_timeout=first_call_timeout,
        )
        self.host = resolve_host(host)
        self.connect_timeout = float(connect_timeout)
        self.keep_alive = keep_alive
        self.client = ollama.Client(host=self.host, timeout=self._httpx_timeout(self.timeout))
        self._digest: str | None = None

    def _httpx_timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=min(self.connect_timeout, seconds))

    # -- availability -----------------------------------------------------------------
    def available_models(self) -> dict[str, str]:
        """Model name -> digest of the models the server has; raises LLMFault."""
        try:
            listing = self.client.list()
        except ollama.ResponseError as exc:
            raise LLMFault(
                f"Ollama at {self.host} answered /api/tags with {exc}", retry=True
            ) from None
        except (ConnectionError, httpx.HTTPError) as exc:
            raise LLMFault(self._unreachable(exc), retry=True) from None
        return {m.model or "": m.digest or "" for m in listing.models}

    def check(self) -> str | None:
        """None when the server answers and has the model, else the reason with the fix."""
        try:
            models = self.available_models()
        except LLMFault as fault:
            return fault.reason
        for name, digest in models.items():
            if _same_model(name, self.model):
                self._digest = digest
                return None
        return f"Ollama at {self.host} has no model {self.model!r}: run `ollama pull {self.model}`"

    def identity(self) -> str:
        if self._digest is None:
            try:
                models = self.available_models()
            except LLMFault:
                return self.model
            self._digest = next(
                (d for n, d in models.items() if _same_model(n, self.model) and d), ""
            )
        return f"{self.model}@{self._digest}" if self._digest else self.model

    # -- one call ---------------------------------------------------------------------
    def _unreachable(self, exc: BaseException) -> str:
        return (
            f"Ollama unreachable at {self.host} ({type(exc).__name__}): start it with "
            "`ollama serve` or set OLLAMA_HOST"
        )

    def _complete(
        self,
        prompt: Prompt,
        options: dict[str, Any],
        on_text: Callable[[str], None],
    ) -> Completion:
        timeout = self.call_timeout_s or self.timeout
        deadline = time.monotonic() + timeout
        # the time this call may take (the first call's may be longer): every read and
        # the connect, and the whole stream by the deadline
        self.client._client.timeout = self._httpx_timeout(timeout)
        parts: list[str] = []
        stream = None
        try:
            stream = self.client.chat(
                model=self.model,
                messages=prompt.messages(),
                stream=True,
                format=prompt.schema,
                options=options,
                keep_alive=self.keep_alive,
            )
            first = None
            for chunk in stream:
                if first is None:
                    first = time.perf_counter()
                if chunk.message is not None and chunk.message.content:
                    parts.append(chunk.message.content)
                    on_text("".join(parts))
                if chunk.done:
                    gen = time.perf_counter() - first
                    if chunk.eval_duration:
                        gen = chunk.eval_duration / 1e9
                    return Completion(
                        "".join(parts), int(chunk.eval_count or 0), chunk.done_reason, gen
                    )
                if time.monotonic() > deadline:
                    raise LLMFault(f"no complete answer within {timeout:g}s", retry=False)
            raise LLMFault(
                f"stream ended before the answer was done (truncated after "
                f"{len(''.join(parts))} characters)",
                retry=True,
            )
        except ollama.ResponseError as exc:
            code = exc.status_code
            if code == 404:
                raise LLMFault(
                    f"model {self.model!r} not found on Ollama at {self.host}: "
                    f"run `ollama pull {self.model}`",
                    retry=False,
                ) from None
            if code == -1:
                raise LLMFault(
                    f"error in the middle of the stream: {exc.error}", retry=True
                ) from None
            raise LLMFault(f"Ollama HTTP {code}: {exc.error}", retry=code >= 500) from None
        except httpx.TimeoutException:
            raise LLMFault(f"no answer within the {timeout:g}s timeout", retry=False) from None
        except (ConnectionError, httpx.ConnectError) as exc:
            raise LLMFault(self._unreachable(exc), retry=True) from None
        except (httpx.HTTPError, json.JSONDecodeError, pydantic.ValidationError) as exc:
            raise LLMFault(
                f"broken stream ({type(exc).__name__}: {str(exc)[:120]})", retry=True
            ) from None
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    def close(self) -> None:
        self.client._client.close()
