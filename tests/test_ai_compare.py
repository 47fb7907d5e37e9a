"""``tapedeck compare --personas persona@brain[:model],...``: AI against rules in one command."""

from __future__ import annotations

import json

import pytest

from engine.cli import main
from tests.fake_ollama import FakeOllama


@pytest.fixture
def fake():
    with FakeOllama(models={"phi3:mini": "sha256:" + "ab" * 32, "llama3.2:1b": "sha256:cd"}) as s:
        yield s


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_rows_are_persona_at_brain_with_their_own_brains(fake, btc_1m_csv, capsys, tmp_path):
    personas = "momentum@rules,momentum@ollama,scalper@ollama:llama3.2:1b"
    code, out = run(
        capsys,
        *("compare", str(btc_1m_csv), "--last", "240", "--personas", personas),
        *("--host", fake.url, "--json", "--brain-option", f"cache_path={tmp_path / 'c.db'}"),
    )
    assert code == 0
    records = json.loads(out)
    assert [r["persona"] for r in records] == personas.split(",")
    rules, llm, other = (r["brain"] for r in records)
    assert rules["kind"] == "rules" and rules["calls"] > 0 and rules["grounded_share"] is None
    assert llm["kind"] == "ollama" and llm["model"] == "phi3:mini" and llm["calls"] > 0
    assert other["model"] == "llama3.2:1b"
    assert llm["grounded_share"] is not None and llm["tokens"] > 0
    models = {r["model"] for r in fake.requests}
    assert models == {"phi3:mini", "llama3.2:1b"}
    # the rules row is the same run as a plain rules compare
    code, out = run(
        capsys, "compare", str(btc_1m_csv), "--last", "240", "--personas", "momentum", "--json"
    )
    (plain,) = json.loads(out)
    assert plain["persona"] == "momentum"
    assert plain["metrics"]["net_pnl"] == records[0]["metrics"]["net_pnl"]


def test_summary_table_shows_pnl_and_risk_beside_the_brain_cost(fake, btc_1m_csv, capsys):
    code, out = run(
        capsys,
        *("compare", str(btc_1m_csv), "--last", "240", "--no-cache", "--host", fake.url),
        *("--personas", "momentum@rules,momentum@ollama"),
    )
    assert code == 0
    head = out[out.index("summary") :]
    columns = ("P&L", "max drawdown", "brain calls", "cache hits", "mean latency ms", "tokens")
    for column in (*columns, "grounded"):
        assert column in head
    assert "momentum@rules" in head and "momentum@ollama" in head


def test_bad_specs_are_one_line_errors(capsys, btc_1m_csv):
    assert main(["compare", str(btc_1m_csv), "--personas", "momentum@gpt"]) == 2
    assert "unknown brain 'gpt'" in capsys.readouterr().err
    assert main(["compare", str(btc_1m_csv), "--personas", "momentum@rules,momentum@rules"]) == 2
    assert "given twice" in capsys.readouterr().err
