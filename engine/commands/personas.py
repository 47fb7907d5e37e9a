"""``tapedeck personas [--json]``: the built-in personas."""

from __future__ import annotations

import argparse
import json

from engine.brain.persona import builtin_file_name, builtin_persona_names, load_persona
from engine.commands import tables
from engine.commands.records import persona_record


def register(subparsers: argparse._SubParsersAction) -> None:
    personas = subparsers.add_parser("personas", help="list the built-in personas")
    personas.add_argument("--json", action="store_true", help="print JSON")
    personas.set_defaults(func=personas_command)


def personas_command(args: argparse.Namespace) -> int:
    records = [
        persona_record(load_persona(n), builtin_file_name(n)) for n in builtin_persona_names()
    ]
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    tables.console().print(tables.personas_table(records))
    return 0
