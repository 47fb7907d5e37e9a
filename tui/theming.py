"""Themes are data: every ``*.toml`` in the ``themes`` package becomes a Textual Theme."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

from textual.theme import BUILTIN_THEMES, Theme

THEMES_PACKAGE = "themes"
DEFAULT_THEME = "tapedeck-dark"

# Fallbacks so that Textual's built-in themes can be chosen too (they lack our variables).
VARIABLE_DEFAULTS: dict[str, str] = {
    "candle-up": "#3fcf8e",
    "candle-down": "#f0616d",
    "chart-ma-1": "#f2b84b",
    "chart-ma-2": "#4fc3f7",
    "chart-ma-3": "#c792ea",
    "chart-entry": "#4f9cf7",
    "chart-stop": "#f0616d",
    "chart-target": "#3fcf8e",
    "chart-trail": "#f2b84b",
    "chart-axis": "#7d8590",
    "signal-long": "#3fcf8e",
    "signal-short": "#f0616d",
    "signal-neutral": "#7d8590",
    "zone-high": "#f0616d",
    "zone-low": "#3fcf8e",
}

_THEME_FIELDS = {
    "name",
    "primary",
    "secondary",
    "warning",
    "error",
    "success",
    "accent",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
    "dark",
}


class ThemeFileError(ValueError):
    """A theme file that cannot be used; the message names the file and the key."""


def theme_from_toml(text: str, source: str) -> Theme:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ThemeFileError(f"{source}: not valid TOML: {exc}") from None
    table = data.get("theme")
    if not isinstance(table, dict) or "name" not in table or "primary" not in table:
        raise ThemeFileError(f"{source}: a [theme] table with name and primary is required")
    unknown = sorted(set(table) - _THEME_FIELDS)
    if unknown:
        raise ThemeFileError(f"{source}: unknown key [theme].{unknown[0]}")
    variables = {str(k): str(v) for k, v in data.get("variables", {}).items()}
    return Theme(**table, variables=variables)


def load_themes(folder: Path | None = None) -> list[Theme]:
    """All themes in ``folder`` (default: the bundled ``themes`` package), sorted by name."""
    if folder is not None:
        files = sorted(Path(folder).glob("*.toml"))
        return [theme_from_toml(p.read_text(encoding="utf-8"), str(p)) for p in files]
    root = resources.files(THEMES_PACKAGE)
    files = sorted((p for p in root.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    return [theme_from_toml(p.read_text(encoding="utf-8"), p.name) for p in files]


def check_theme_name(name: str) -> None:
    """ThemeFileError (a ValueError: exit 2 in the CLI) unless ``name`` is a theme we know."""
    known = [t.name for t in load_themes()] + sorted(BUILTIN_THEMES)
    if name not in known:
        raise ThemeFileError(f"--theme: unknown theme {name!r}; choose one of {', '.join(known)}")
