"""Experiment files: grid expansion, cell names, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.brain.persona import load_persona
from engine.experiment.spec import (
    Cell,
    Config,
    ExperimentError,
    experiment_from_dict,
    load_experiment,
    persona_with,
)
from engine.experiment.windows import Window

DAY = 86_400 * 10**9


@pytest.fixture()
def data_file(tmp_path: Path) -> Path:
    # existence is all the parser checks; the candles are read by the runner
    path = tmp_path / "eth.csv"
    path.write_text("timestamp,open,high,low,close,volume\n")
    return path


def _exp(tmp_path: Path, **fields):
    data = {"data": ["eth.csv"], "personas": ["momentum"], **fields}
    return experiment_from_dict(data, source="e.toml", base=tmp_path)


def test_grid_expands_in_file_order_with_readable_ids(tmp_path, data_file):
    exp = _exp(
        tmp_path,
        personas=[
            {"name": "momentum", "brains": ["rules", "llamacpp"]},
            "scalper@rules",
        ],
        grid={"stop_atr": [1.5, 2, 3], "entry_threshold": [0.8, 1.0]},
    )
    ids = [c.id for c in exp.configs()]
    assert len(ids) == 2 * 3 * 2 + 3 * 2
    assert ids[:3] == [
        "momentum@rules[stop_atr=1.5,entry_threshold=0.8]",
        "momentum@rules[stop_atr=1.5,entry_threshold=1]",
        "momentum@rules[stop_atr=2,entry_threshold=0.8]",
    ]
    assert ids[6] == "momentum@llamacpp[stop_atr=1.5,entry_threshold=0.8]"
    assert ids[-1] == "scalper@rules[stop_atr=3,entry_threshold=1]"
    assert len(set(ids)) == len(ids)


def test_a_persona_grid_replaces_the_top_grid_and_a_model_is_part_of_the_id(tmp_path, data_file):
    exp = _exp(
        tmp_path,
        personas=[
            {"name": "momentum@ollama:phi3:mini", "grid": {"trailing.distance": [2.0, 4.0]}},
            "scalper",
        ],
        grid={"stop_atr": [1.0]},
    )
    ids = [c.id for c in exp.configs()]
    assert ids == [
        "momentum@ollama:phi3:mini[trailing.distance=2]",
        "momentum@ollama:phi3:mini[trailing.distance=4]",
        "scalper@rules[stop_atr=1]",
    ]
    first = exp.configs()[0]
    assert first.model == "phi3:mini"
    assert first.build_persona().trailing.distance == 2.0


def test_cells_are_configs_times_sets_times_windows_and_name_all_three(tmp_path, data_file):
    other = tmp_path / "ltc.csv"
    other.write_text("x")
    exp = experiment_from_dict(
        {
            "instruments": {"eth": ["eth.csv"], "pair": ["eth.csv", "ltc.csv"]},
            "personas": ["momentum"],
            "grid": {"stop_atr": [2, 3]},
            "windows": {"kind": "walk_forward", "train": "4d", "test": "2d"},
        },
        source="e.toml",
        base=tmp_path,
    )
    spans = {"eth": (0, 10 * DAY), "pair": (0, 8 * DAY)}
    cells = exp.cells(spans)
    # eth: folds at 0, 2d, 4d (oos ends 6d, 8d, 10d) -> 3 folds; pair: 2 folds; 2 configs
    assert len(cells) == 2 * (3 * 2 + 2 * 2)
    assert cells[0].id == "momentum@rules[stop_atr=2]/eth/f01-is"
    assert cells[1].id == "momentum@rules[stop_atr=2]/eth/f01-oos"
    assert cells[6].id == "momentum@rules[stop_atr=2]/pair/f01-is"
    assert len({c.id for c in cells}) == len(cells)
    assert exp.instrument_sets["pair"] == (
        str(data_file.resolve()),
        str(other.resolve()),
    )


def test_the_parameters_reach_the_persona_validated():
    base = load_persona("momentum")
    p = persona_with(base, [("stop_atr", 1.5), ("signal_weights.rsi_oversold", 0.5)])
    assert p.stop_atr == 1.5 and p.signal_weights["rsi_oversold"] == 0.5
    assert p.target_atr == base.target_atr and p.name == base.name
    assert persona_with(base, []) is base
    # the persona round-trips through its table: same value, same persona (trailing too)
    assert persona_with(base, [("stop_atr", base.stop_atr)]).fingerprint() == base.fingerprint()


def test_cell_id_is_config_set_window():
    cell = Cell(
        Config("momentum", "rules", (("stop_atr", 2.0),), "momentum"), "all", Window("r03", 0, 1)
    )
    assert cell.id == "momentum@rules[stop_atr=2]/all/r03"
    assert cell.group == ("all", "r03")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"personas": []}, "field 'personas'"),
        ({"persona": ["momentum"]}, "field 'persona': unknown field"),
        ({"personas": [{"name": "nobody"}]}, "field 'personas[0].name': unknown persona"),
        ({"personas": ["momentum@gpt9"]}, "field 'personas[0].name'"),
        ({"grid": {"stop_atr": [2, -1]}}, "field 'grid.stop_atr': -1"),
        ({"grid": {"stop_loss": [2]}}, "field 'grid.stop_loss'"),
        ({"grid": {"stop_atr": []}}, "field 'grid.stop_atr': expected at least one value"),
        ({"data": ["missing.csv"]}, "field 'data[0]': missing.csv: no such file"),
        ({"windows": {"kind": "walk_forward", "train": "4d"}}, "field 'windows.test'"),
        ({"windows": {"kind": "rolling", "size": "five days"}}, "field 'windows.size'"),
        ({"windows": {"kind": "weekly"}}, "field 'windows.kind'"),
        ({"windows": {"kind": "fixed", "ranges": [["2020-01-02", "2020-01-01"]]}}, "ranges[0]"),
        ({"backtest": {"fees": "ten"}}, "field 'backtest.fees'"),
        ({"backtest": {"leverage": 2}}, "field 'backtest.leverage'"),
        ({"search": {"method": "random"}}, "field 'search.trials'"),
        ({"search": {"objective": "luck"}}, "field 'search.objective'"),
        ({"compare": [{"a": "x"}]}, "field 'compare[0]'"),
        (
            {"personas": ["momentum", "momentum"]},
            "configuration 'momentum@rules' is listed twice",
        ),
    ],
)
def test_a_malformed_file_is_one_error_naming_the_field(tmp_path, data_file, fields, message):
    with pytest.raises(ExperimentError) as info:
        _exp(tmp_path, **fields)
    assert message in str(info.value)
    assert str(info.value).startswith("e.toml: ")


def test_load_experiment_reads_toml_relative_to_the_file(tmp_path, data_file):
    spec = tmp_path / "stops.toml"
    spec.write_text('data = ["eth.csv"]\npersonas = ["scalper@rules"]\n[grid]\nstop_atr = [1, 2]\n')
    exp = load_experiment(spec)
    assert exp.name == "stops"
    assert [c.id for c in exp.configs()] == [
        "scalper@rules[stop_atr=1]",
        "scalper@rules[stop_atr=2]",
    ]
    bad = tmp_path / "bad.toml"
    bad.write_text("data = [")
    with pytest.raises(ExperimentError, match="not valid TOML"):
        load_experiment(bad)
