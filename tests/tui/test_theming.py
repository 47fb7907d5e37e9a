"""Themes are data files; every bundled theme defines the chart's colours."""

from __future__ import annotations

import pytest

from tui.theming import VARIABLE_DEFAULTS, ThemeFileError, load_themes, theme_from_toml


def test_bundled_themes_load_with_candle_colours() -> None:
    themes = {t.name: t for t in load_themes()}
    assert {"tapedeck-dark", "tapedeck-light", "tapedeck-amber"} <= set(themes)
    assert themes["tapedeck-light"].dark is False
    for theme in themes.values():
        missing = set(VARIABLE_DEFAULTS) - set(theme.variables)
        assert not missing, f"{theme.name} lacks {sorted(missing)}"
        assert theme.variables["candle-up"] != theme.variables["candle-down"]


def test_a_theme_folder_is_read(tmp_path) -> None:
    (tmp_path / "mine.toml").write_text(
        '[theme]\nname = "mine"\nprimary = "#123456"\n[variables]\ncandle-up = "#00ff00"\n'
    )
    (theme,) = load_themes(tmp_path)
    assert theme.name == "mine" and theme.variables == {"candle-up": "#00ff00"}


@pytest.mark.parametrize(
    "text,match",
    [
        ("[theme\n", "not valid TOML"),
        ('[theme]\nname = "x"\n', "name and primary"),
        (
            '[theme]\nname = "x"\nprimary = "#fff"\ncolour = "red"\n',
            r"unknown key \[theme\].colour",
        ),
    ],
)
def test_bad_theme_files_name_the_problem(text: str, match: str) -> None:
    with pytest.raises(ThemeFileError, match=match):
        theme_from_toml(text, "bad.toml")
