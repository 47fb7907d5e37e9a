"""``tapedeck run / compare / personas``: output shapes, agreement with the engine, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.backtest import BacktestConfig, BacktestEngine
from engine.brain.persona import builtin_persona_names, load_persona
from engine.brain.rules import RuleBrain
from engine.cli import main
from engine.commands.run import TRADE_KEYS, result_record
from engine.data import load_many, select
from engine.data.sample import SAMPLE_PATHS
from engine.timeutil import to_iso

SAMPLE = str(SAMPLE_PATHS[0])
LAST = 4000


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def direct_run(paths: list[str], persona: str, last: int | None = LAST, **cfg: float):
    series = load_many(paths)
    if last is not None:
        series = [select(s, last=last) for s in series]
    p = load_persona(persona)
    config = BacktestConfig(**cfg)
    return BacktestEngine(series, p, RuleBrain(p), config).run()


# -- personas ---------------------------------------------------------------------------


def test_personas_lists_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "personas")
    assert code == 0
    for name in ("scalper", "conservative", "momentum", "mean-reversion"):
        assert name in out
    code, out, _ = cli(capsys, "personas", "--json")
    records = json.loads(out)
    assert [r["file"] for r in records] == [
        f"{n.replace('-', '_')}.toml" for n in builtin_persona_names()
    ]
    assert [r["name"] for r in records] == builtin_persona_names()
    momentum = next(r for r in records if r["name"] == "momentum")
    p = load_persona("momentum")
    assert momentum["entry_threshold"] == p.entry_threshold
    assert momentum["signal_weights"] == dict(p.signal_weights)
    assert momentum["description"] == p.description


# -- run --------------------------------------------------------------------------------


def test_run_json_matches_the_engine(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(
        capsys,
        "run",
        SAMPLE,
        "--persona",
        "scalper",
        "--last",
        str(LAST),
        "--json",
        "--fees",
        "7",
        "--slippage",
        "2",
    )
    assert code == 0, err
    data = json.loads(out)
    assert set(data) == {"metrics", "trades", "brain", "data"}
    expected = direct_run([SAMPLE], "scalper", fees_bps=7.0, slippage_bps=2.0)
    assert len(data["trades"]) == len(expected.trades) > 0
    for got, trade in zip(data["trades"], expected.trades, strict=True):
        assert tuple(got) == TRADE_KEYS
        assert got["instrument"] == trade.instrument
        assert got["side"] == trade.side.value
        assert got["entry_time"] == to_iso(trade.entry_time)
        assert got["exit_time"] == to_iso(trade.exit_time)
        assert got["entry_price"] == trade.entry_price
        assert got["exit_price"] == trade.exit_price
        assert got["qty"] == trade.qty and got["pnl"] == trade.pnl and got["fees"] == trade.fees
        assert got["exit_reason"] == trade.exit_reason.value
    assert data == result_record(expected) | {"brain": data["brain"], "data": data["data"]}
    assert data["data"] == [
        {
            "instrument": data["data"][0]["instrument"],
            "source": Path(SAMPLE).name,
            "rows_read": data["data"][0]["rows_read"],
            "rows": LAST,
            "gaps": 0,
            "missing_candles": 0,
            "repairs": [],
        }
    ]
    brain = dict(data["brain"])
    assert brain.pop("kind") == "rules" and brain.pop("model") == ""
    assert brain["calls"] == expected.brain_stats["calls"] > 0
    # the money adds up: final equity = initial cash + the sum of trade pnl (all closed at end)
    total_pnl = sum(t["pnl"] for t in data["trades"])
    assert expected.final_equity == pytest.approx(10_000.0 + total_pnl, rel=1e-9)


def test_run_text_report_and_run_log(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from engine.runlog import read_run_log

    out_file = tmp_path / "run.jsonl"
    code, out, err = cli(
        capsys, "run", SAMPLE, "--persona", "momentum", "--last", str(LAST), "--out", str(out_file)
    )
    assert code == 0, err
    assert out.startswith("momentum · brain rules · ")
    assert "metrics" in out and "brain" in out
    expected = direct_run([SAMPLE], "momentum")
    if expected.trades:
        assert "trades (" in out
    log = read_run_log(out_file)
    assert log.trades == list(expected.trades)
    assert err == ""  # no progress bar when stderr is not a terminal


def test_run_progress_goes_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = cli(
        capsys,
        "run",
        SAMPLE,
        "--persona",
        "scalper",
        "--last",
        "500",
        "--json",
        "--progress",
        "always",
    )
    assert code == 0
    json.loads(out)  # stdout stays pure JSON


def test_run_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("run", SAMPLE, "--persona", "mean-reversion", "--last", "2000", "--json")
    first, second = json.loads(cli(capsys, *args)[1]), json.loads(cli(capsys, *args)[1])
    # wall-clock latency is the only thing allowed to differ
    assert first["brain"].pop("mean_latency_s") >= 0
    second["brain"].pop("mean_latency_s")
    assert first == second and first["trades"]


def test_a_user_persona_file_runs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "eager.toml"
    f.write_text(
        'name = "eager"\nentry_threshold = 0.1\n[signal_weights]\n'
        "rsi_oversold = 1\nrsi_overbought = 1\nmacd_cross_up = 1\nmacd_cross_down = 1\n"
    )
    code, out, err = cli(capsys, "run", SAMPLE, "--persona", str(f), "--last", "2000", "--json")
    assert code == 0, err
    assert len(json.loads(out)["trades"]) > 0


# -- compare ----------------------------------------------------------------------------


def test_compare_json_is_each_persona_run_on_the_same_window(
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = [str(p) for p in SAMPLE_PATHS[:2]]
    code, out, err = cli(
        capsys,
        "compare",
        *paths,
        "--personas",
        "scalper,mean-reversion",
        "--last",
        "3000",
        "--json",
    )
    assert code == 0, err
    records = json.loads(out)
    assert [r["persona"] for r in records] == ["scalper", "mean-reversion"]
    for record in records:
        assert set(record) == {"persona", "metrics", "trades", "brain", "data"}
        alone = direct_run(paths, record["persona"], last=3000)
        assert record["trades"] == result_record(alone)["trades"]
        assert record["metrics"] == result_record(alone)["metrics"]


def test_compare_text_side_by_side(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(
        capsys, "compare", SAMPLE, "--personas", "conservative,momentum", "--last", "2000"
    )
    assert code == 0, err
    header = next(
        line for line in out.splitlines() if "conservative" in line and "momentum" in line
    )
    assert header.index("conservative") < header.index("momentum")


# -- real data --------------------------------------------------------------------------


def test_run_on_real_btc(capsys: pytest.CaptureFixture[str], btc_1m_csv: Path) -> None:
    code, out, err = cli(
        capsys, "run", str(btc_1m_csv), "--persona", "momentum", "--last", "10000", "--json"
    )
    assert code == 0, err
    data = json.loads(out)
    expected = direct_run([str(btc_1m_csv)], "momentum", last=10000)
    assert data["trades"] == result_record(expected)["trades"]
    assert data["brain"]["calls"] == expected.brain_stats["calls"]


# -- errors: exit 2 with one line --------------------------------------------------------


def _one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = cli(capsys, *argv)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tapedeck: error: "), err
    return lines[0]


def test_bad_persona_name(capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_error(capsys, "run", SAMPLE, "--persona", "yolo")
    assert "unknown persona 'yolo'" in line and "scalper" in line


def test_malformed_persona_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('name = "bad"\nrisk_per_trade = 5\n')
    line = _one_line_error(capsys, "run", SAMPLE, "--persona", str(f))
    assert str(f) in line and "risk_per_trade" in line


def test_bad_data_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = _one_line_error(capsys, "run", str(tmp_path / "missing.csv"), "--persona", "scalper")
    assert "missing.csv" in line
    junk = tmp_path / "junk.csv"
    junk.write_text("this is not,a candle file\n1,2\n")
    line = _one_line_error(capsys, "run", str(junk), "--persona", "scalper")
    assert "junk.csv" in line


def test_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_error(capsys, "run", SAMPLE, "--brain", "gpt9")
    assert "unknown brain 'gpt9'" in line and "rules" in line
    line = _one_line_error(capsys, "run", SAMPLE, "--last", "10", "--start", "2024-01-01")
    assert "not both" in line
    line = _one_line_error(capsys, "run", SAMPLE, "--fees", "-1")
    assert "--fees" in line
    line = _one_line_error(capsys, "compare", SAMPLE, "--personas", "scalper,scalper")
    assert "given twice" in line
    line = _one_line_error(capsys, "compare", SAMPLE, "--personas", ",")
    assert "at least one" in line
    line = _one_line_error(capsys, "run", SAMPLE, "--model", "phi3")
    assert line == "tapedeck: error: brain 'rules' does not accept option(s) model"
    line = _one_line_error(capsys, "run", SAMPLE, "--brain-option", "novalue")
    assert "KEY=VALUE" in line


def test_brain_options_reach_the_brain_factory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.brain import factory

    seen: list[dict] = []

    def build(persona, **opts):
        seen.append(opts)
        return RuleBrain(persona)

    monkeypatch.setitem(factory._registered, "probe", build)
    code, out, err = cli(
        capsys,
        "run",
        SAMPLE,
        "--brain",
        "probe",
        "--last",
        "500",
        "--json",
        "--model",
        "m1",
        "--no-cache",
        "--brain-option",
        "temperature=0.5",
        "--brain-option",
        "host=http://x",
    )
    assert code == 0, err
    assert seen == [
        {"model": "m1", "cache": False, "temperature": 0.5, "host": "http://x", "timeframe": "1m"}
    ]
    assert json.loads(out)["brain"]["kind"] == "rules"  # what the built brain calls itself
