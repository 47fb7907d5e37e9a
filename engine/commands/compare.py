"""``tapedeck compare DATA... --personas a,b,c``: several personas over one window.

The analysis (indicators, signals) is computed once by a Session; the personas' metrics
are printed side by side (``--json``: a list of ``run --json`` objects, each with its
``persona``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from engine.brain.factory import make_brain
from engine.brain.persona import TradingPersona, load_persona
from engine.brain.spec import parse_persona_brains
from engine.commands import tables
from engine.commands.options import (
    RunError,
    add_backtest_arguments,
    backtest_config,
    brain_options,
    check_brain_kind,
    check_options,
    window_from_args,
)
from engine.commands.progress import Progress
from engine.commands.records import result_record
from engine.data.notices import data_records


def register(subparsers: argparse._SubParsersAction) -> None:
    compare = subparsers.add_parser("compare", help="several personas side by side")
    add_backtest_arguments(compare)
    compare.add_argument(
        "--personas",
        default="scalper,conservative,momentum,mean-reversion",
        help="comma-separated names or .toml files, each optionally persona@brain[:model] "
        "(e.g. momentum@rules,momentum@llamacpp,scalper@ollama:phi3:mini; "
        "default: the four built-ins with --brain)",
    )
    compare.add_argument(
        "--html", type=Path, metavar="FILE", help="write the comparison as an HTML report"
    )
    compare.set_defaults(func=compare_command)


def _rows(args: argparse.Namespace, series: Any) -> list[tuple[TradingPersona, str, dict]]:
    """(persona, brain kind, make_brain options) per ``--personas`` item. An item may
    name its brain, ``persona@brain[:model]``; then every row is called by that label
    (the persona renamed so), else by the persona's name as before."""
    specs = parse_persona_brains(args.personas, default_brain=args.brain)
    labelled = "@" in args.personas
    rows = []
    for spec in specs:
        persona = load_persona(spec.persona)
        if labelled:
            persona = dataclasses.replace(persona, name=spec.label)
        opts: dict[str, Any] = {}
        if spec.brain != "rules":
            opts = brain_options(argparse.Namespace(**{**vars(args), "brain": spec.brain}), series)
            if spec.model:
                opts["model"] = spec.model
        rows.append((persona, spec.brain, opts))
    names = [p.name for p, _, _ in rows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RunError(f"persona {twice[0]!r} is given twice (name a brain: {twice[0]}@rules)")
    return rows


def compare_command(args: argparse.Namespace) -> int:
    from engine.backtest import Session

    check_options(args)
    check_brain_kind(args.brain)
    parse_persona_brains(args.personas, default_brain=args.brain)  # fail before loading data
    series = window_from_args(args)
    config = backtest_config(args)
    rows = _rows(args, series)
    builders = {p.name: (kind, opts) for p, kind, opts in rows}

    def build(persona: TradingPersona) -> Any:
        kind, opts = builders[persona.name]
        return make_brain(kind, persona, **opts)

    session = Session(series, [p for p, _, _ in rows], build, config)
    results: dict[str, Any] = {}
    with Progress(args.progress, session.total_steps) as progress:
        for name, engine in session.engines.items():
            results[name] = engine.run(progress.callback(name, engine.total_steps))
    if args.html is not None:
        from engine.report import from_result, write_report

        runs = [from_result(r, name, series) for name, r in results.items()]
        write_report(args.html, runs, title="tapedeck compare")
    if args.json:
        data = data_records(series)
        records = [
            {"persona": name, **result_record(r), "data": data} for name, r in results.items()
        ]
        print(json.dumps(records, indent=2, allow_nan=False))
        return 0
    console = tables.console()
    kinds = sorted({kind for _, kind, _ in rows})
    console.print(f"[bold]compare[/] · brain {', '.join(kinds)} · {tables.window_text(series)}")
    console.print(tables.summary_table(results))
    console.print(tables.compare_table(results))
    return 0
