"""Command palette entries: personas, speeds, jump, themes, open file, compare."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.clock import SPEEDS


class TapedeckCommands(Provider):
    def _commands(self) -> list[tuple[str, object, str]]:
        from tui.sources import persona_choices

        app = self.app
        out: list[tuple[str, object, str]] = []
        for name, desc in persona_choices():
            out.append(
                (f"Persona: {name}", partial(app.use_persona, name), desc or "rerun the window")
            )
        for speed in SPEEDS:
            out.append((f"Speed: {speed}", partial(app.use_speed, speed), "playback speed"))
        out.append(("Jump to step or time", app.open_jump, "jump to a step number or a UTC time"))
        out.append(("Restart the window", app.restart_window, "replay from the first candle"))
        out.append(("Compare personas", app.open_compare, "2 to 4 personas side by side"))
        out.append(("Open data files", app.open_files, "replay other CSV/feather/parquet files"))
        out.append(("Export trades CSV", partial(app.export, "trades"), "closed trades (e)"))
        out.append(("Export run log", partial(app.export, "runlog"), "JSONL run log so far (E)"))
        out.append(("Export HTML report", partial(app.export, "report"), "report so far (H)"))
        for theme in sorted(app.available_themes):
            if theme.startswith("tapedeck") or theme in ("textual-dark", "textual-light", "nord"):
                out.append((f"Theme: {theme}", partial(app.use_theme, theme), "colour theme"))
        return out

    async def startup(self) -> None:
        # Once per palette opening, not per keystroke: listing personas reads their files.
        self._entries = self._commands()

    async def discover(self) -> Hits:
        for name, callback, help_text in self._entries:
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._entries:
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
