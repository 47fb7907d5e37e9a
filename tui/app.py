"""The Textual application: themes from data files, the replay screen, app-wide keys."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from engine.data.notices import data_notices
from engine.errors import TapedeckError
from tui import textual_guards
from tui.commands import TapedeckCommands
from tui.dialogs import HelpScreen, OpenFileDialog
from tui.playback import PlaybackScreen
from tui.replay import ReplayScreen
from tui.sources import ReplaySource, ReplaySpec
from tui.theming import DEFAULT_THEME, VARIABLE_DEFAULTS, load_themes

textual_guards.install()


class TapedeckApp(App):
    TITLE = "tapedeck"
    CSS_PATH = "tapedeck.tcss"
    COMMANDS = App.COMMANDS | {TapedeckCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("t", "next_theme", "Theme", id="app.theme"),
    ]

    def __init__(
        self,
        spec: ReplaySpec,
        *,
        source: ReplaySource | None = None,
        theme: str | None = None,
        autoplay: bool = False,
        compare: list[str] | None = None,
        history: bool = True,
    ) -> None:
        super().__init__()
        self.spec = spec
        self._compare = compare  # personas to open the compare screen with at once
        self._source = source
        self._initial_theme = theme or DEFAULT_THEME
        self._autoplay = autoplay
        self._history = history
        self._themes = load_themes()
        for t in self._themes:
            self.register_theme(t)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def on_mount(self) -> None:
        self.theme = self._initial_theme
        source = self._source or ReplaySource.from_spec(self.spec)
        screen = ReplayScreen(source, speed=self.spec.speed, open_with_history=self._history)
        self.push_screen(screen)
        self._announce_data(source)
        if self._compare:
            self.call_after_refresh(screen._open_compare, self._compare)
        if self._autoplay:
            self.call_after_refresh(screen.action_play)

    # -- helpers used by keys and the command palette ------------------------------------
    @property
    def playback(self) -> PlaybackScreen | None:
        screen = self.screen
        return screen if isinstance(screen, PlaybackScreen) else None

    @property
    def replay(self) -> ReplayScreen | None:
        return next((s for s in self.screen_stack if isinstance(s, ReplayScreen)), None)

    def deliver_screenshot(
        self,
        filename: str | None = None,
        path: str | None = None,
        time_format: str | None = None,
    ) -> str | None:
        """Screenshots go to the export folder (not ~/Downloads, which may not exist),
        and the path is shown."""
        if self.is_web:
            return super().deliver_screenshot(filename, path, time_format)
        from tui.export import export_dir

        try:
            folder = Path(path).expanduser() if path else export_dir()
            folder.mkdir(parents=True, exist_ok=True)
            saved = self.save_screenshot(filename, str(folder), time_format)
        except OSError as exc:
            self.notify(f"cannot save the screenshot: {exc}", severity="error", timeout=8)
            return None
        self.notify(f"screenshot saved: {saved}", timeout=6)
        return saved

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_next_theme(self) -> None:
        names = [t.name for t in self._themes]
        i = names.index(self.theme) if self.theme in names else -1
        self.use_theme(names[(i + 1) % len(names)])

    def use_theme(self, name: str) -> None:
        self.theme = name
        if self.playback is not None:
            self.playback.draw()
        self.notify(f"theme {name}", timeout=2)

    def use_speed(self, speed: str) -> None:
        if self.playback is not None:
            self.playback.action_speed(speed)

    def use_persona(self, persona: str) -> None:
        replay = self.replay
        if replay is not None:
            if self.screen is not replay:
                self.pop_screen()
            replay._switch_persona((persona, replay.source.brain_kind))

    def open_jump(self) -> None:
        if self.playback is not None:
            self.playback.action_jump()

    def restart_window(self) -> None:
        if self.playback is not None:
            self.playback.action_restart()

    def open_compare(self) -> None:
        if self.replay is not None and self.screen is self.replay:
            self.replay.action_compare()

    def export(self, what: str) -> None:
        if self.replay is not None:
            self.replay.action_export(what)

    def open_files(self) -> None:
        self.push_screen(OpenFileDialog(), self._open_paths)

    def _open_paths(self, paths: list[str] | None) -> None:
        if not paths:
            return
        spec = ReplaySpec(
            paths=[str(Path(p).expanduser()) for p in paths],
            persona=self.replay.source.persona.name if self.replay else self.spec.persona,
            brain=self.replay.source.brain_kind if self.replay else self.spec.brain,
            speed=self.spec.speed,
            brain_options=self.spec.brain_options,  # by brain kind: --host stays with its kind
        )
        try:
            source = ReplaySource.from_spec(spec)
        except Exception as exc:  # a bad file is a notification, not a crash
            self.notify(f"cannot open: {exc}", severity="error", timeout=8)
            return
        self.spec = spec
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(ReplayScreen(source, speed=spec.speed))
        self._announce_data(source)

    def _announce_data(self, source: ReplaySource) -> None:
        """What loading repaired, gaps kept, a partial overlap: one notification each."""
        try:
            notices = data_notices(source.series)
        except TapedeckError as exc:
            notices = [str(exc)]
        for line in notices:
            self.notify(line, severity="warning", timeout=8)
