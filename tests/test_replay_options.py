"""``tapedeck replay`` takes --model, --host and --timeout for an LLM brain, as run and
compare do: the OpenAI-compatible brain of the replay asks the server --host names."""

from __future__ import annotations

import pytest

from engine.commands.options import RunError
from engine.data.sample import SAMPLE_PATHS
from tests.fake_openai import FakeOpenAI
from tui.main import build_parser, main, replay_spec
from tui.sources import ReplaySource


def innermost(brain):
    """The backend under the wrappers (decision cache, ...)."""
    while hasattr(brain, "inner"):
        brain = brain.inner
    return brain


def parse(*argv: str):
    return build_parser().parse_args(["replay", str(SAMPLE_PATHS[0]), *argv])


def test_replay_asks_the_openai_server_that_host_names(tmp_path, monkeypatch):
    monkeypatch.setenv("TAPEDECK_CACHE_PATH", str(tmp_path / "cache.sqlite3"))
    with FakeOpenAI(models=("other", "gemma")) as server:
        args = parse("--brain", "openai", "--host", server.url, "--model", "gemma")
        spec = replay_spec(args)
        assert spec.brain == "openai"
        assert spec.brain_options == {"openai": {"host": server.url, "model": "gemma"}}
        source = ReplaySource.from_spec(spec)
        inner = innermost(source.engine.brain)
        assert (inner.name, inner.host, inner.model) == ("openai", server.url, "gemma")
        # another brain kind takes none of them (rules accepts no option at all)
        source.switch("momentum", "rules")
        assert source.engine.brain.name == "rules"
        source.switch("momentum", "openai")
        assert innermost(source.engine.brain).host == server.url


def test_without_options_the_spec_has_none_and_a_bad_timeout_is_one_line(capsys):
    assert replay_spec(parse()).brain_options == {}
    with pytest.raises(RunError, match="--timeout must be"):
        replay_spec(parse("--brain", "openai", "--timeout", "0"))
    assert main(["replay", str(SAMPLE_PATHS[0]), "--timeout", "-1"]) == 2
    assert "--timeout must be" in capsys.readouterr().err
