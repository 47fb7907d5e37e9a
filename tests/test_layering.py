"""Layering inside engine/: each unit imports only its own layer and the layers below.

The units are engine's subpackages and top-level modules. From the bottom:

- core: the vocabulary and helpers every layer may use (types, errors, time, runtime,
  number formatting, plain values, atomic files);
- data (loading, validation, merging; fetching from exchanges), indicators, signals;
- risk (the plan checks and RiskGuard) and broker: they need only the core; they sit
  below the brains because brains use risk's plan checks;
- brain; then metrics and export (results, from core types only); backtest (which
  drives brain, risk and broker over the analysed market); the run log; experiments;
- front ends: commands, the HTML report and the CLI (peers: the report formats its
  metric cells with the commands' tables).

Units that share a layer may import each other. Every import counts, including the
function-local ones (the lazy imports that keep start-up fast must still respect the
layers); only ``if TYPE_CHECKING:`` blocks are skipped, because they never run: they
name a type for annotations (``engine.types`` names the data layer's DataReport,
``engine.risk`` the persona it uses duck-typed).

Nothing in engine/ imports the TUI or textual: tests/test_layout.py checks that.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

LAYERS: tuple[tuple[str, frozenset[str]], ...] = tuple(
    (name, frozenset(units.split()))
    for name, units in (
        ("core", "engine types errors timeutil runtime numfmt plain atomic"),
        ("data", "data fetch"),
        ("indicators", "indicators"),
        ("signals", "signals"),
        ("risk", "risk"),
        ("broker", "broker"),
        ("brain", "brain"),
        ("results", "metrics export"),
        ("backtest", "backtest"),
        ("run log", "runlog"),
        ("experiments", "experiment"),
        ("front ends", "commands report cli"),
    )
)


def layer_of(unit: str) -> int | None:
    return next((i for i, (_, units) in enumerate(LAYERS) if unit in units), None)


def unit_of(module: str) -> str:
    """``engine.brain.rules`` -> ``brain``; ``engine`` itself -> ``engine``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def engine_imports(source: str, package: str) -> list[tuple[str, int]]:
    """(imported engine module, line) of every import that can run, at any depth.

    ``package`` is the importing module's package, for relative imports."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.orelse:  # an else branch does run
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                module = child.module or ""
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    module = ".".join([*base, module] if module else base)
                found.append((module, child.lineno))
            visit(child)

    visit(ast.parse(source))
    return [(m, line) for m, line in found if m == "engine" or m.startswith("engine.")]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layering_violations(root: Path) -> list[str]:
    """One line per import that goes up a layer, and per unit that has no layer."""
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        unit = unit_of(module)
        layer = layer_of(unit)
        where = path.relative_to(root.parent)
        if layer is None:
            problems.append(f"{where}: unit {unit!r} has no layer in tests/test_layering.py")
            continue
        for imported, line in engine_imports(path.read_text(encoding="utf-8"), package):
            target = unit_of(imported)
            target_layer = layer_of(target)
            if target_layer is None or target_layer > layer:
                above = "an unplaced unit" if target_layer is None else LAYERS[target_layer][0]
                problems.append(
                    f"{where}:{line}: {LAYERS[layer][0]} ({unit}) imports {imported} ({above})"
                )
    return problems


def test_engine_respects_its_layers() -> None:
    assert layering_violations(REPO_ROOT / "engine") == []


def test_the_check_finds_upward_lazy_and_relative_imports(tmp_path: Path) -> None:
    root = tmp_path / "engine"
    (root / "data").mkdir(parents=True)
    (root / "brain").mkdir()
    (root / "__init__.py").write_text("")
    (root / "data" / "__init__.py").write_text("from .loader import load\n")
    (root / "data" / "loader.py").write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from engine.types import Candle\n"
        "if TYPE_CHECKING:\n"
        "    from engine.backtest import BacktestResult\n"
        "def load():\n"
        "    from engine.brain.rules import RuleBrain\n"
        "    return RuleBrain\n"
    )
    (root / "brain" / "rules.py").write_text("from ..signals import detect\nimport engine.tui\n")
    (root / "gadgets.py").write_text("")
    assert layering_violations(root) == [
        "engine/brain/rules.py:2: brain (brain) imports engine.tui (an unplaced unit)",
        "engine/data/loader.py:7: data (data) imports engine.brain.rules (brain)",
        "engine/gadgets.py: unit 'gadgets' has no layer in tests/test_layering.py",
    ]


def test_relative_imports_resolve_against_the_package() -> None:
    assert engine_imports("from . import x\nfrom .y import z\n", "engine.brain") == [
        ("engine.brain", 1),
        ("engine.brain.y", 2),
    ]
    assert engine_imports("from ..signals import s\n", "engine.brain") == [("engine.signals", 1)]
