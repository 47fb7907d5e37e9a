"""Modal screens: help, jump, persona picker, compare setup, prompt viewer, open file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, SelectionList, Static
from textual.widgets.option_list import Option

HELP_SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Transport",
        (
            ("space", "play / pause"),
            ("s  →", "step one candle"),
            ("←", "step back one candle, exactly as before (hold: scrub)"),
            ("1 2 3 4 5", "speed 1x, 10x, 100x, 1000x, max"),
            ("+  -", "faster / slower"),
            ("j", "jump to a step number or a time (earlier ones rewind)"),
            ("r", "restart the window"),
            ("esc", "pause; stop a jump"),
        ),
    ),
    (
        "History",
        (
            (".  ,", "next / previous trade entry (or what m chose)"),
            ("m  a", "jump to: trade, decision, signal, fill · focused or all"),
            ("d", "decision list with the full audit trail; enter goes there"),
            ("T", "trades table; enter goes to the trade's entry candle"),
            ("e E H S", "save trades CSV · run log · HTML report · screenshot"),
        ),
    ),
    (
        "Views",
        (
            ("p", "persona picker (reruns the same window)"),
            ("c", "compare personas side by side"),
            ("n  b", "next / previous instrument on the chart"),
            ("z  Z", "zoom the chart in / out (wider candles, or 2 to 16 a column)"),
            ("[  ]", "scroll the chart half a screen back / forward"),
            ("f  end", "back to the live edge (the latest candle)"),
            ("o", "next oscillator: RSI, MACD, stochastic, ADX"),
            ("i", "inspect: a cursor on a candle (←/→ move, esc back to live)"),
            ("tab", "next sidebar tab (signals, brain, trades, positions, market, stats)"),
            ("v", "view the prompt of the latest decision"),
            ("t", "next theme"),
            ("ctrl+p", "command palette: personas, speed, jump, theme, open file"),
            ("?", "this help"),
            ("q", "quit"),
        ),
    ),
)


def help_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for title, rows in HELP_SECTIONS:
        table.add_row(Text(title, style="underline"), "")
        for key, what in rows:
            table.add_row(key, what)
        table.add_row("", "")
    return table


HELP_TEXT = (
    "At 1x a candle lasts its real duration; at 100x a 1-minute candle takes 0.6 s. "
    "'max' runs as fast as the engine goes and draws at most 30 frames a second. "
    "While a brain is thinking, simulated time waits and a spinner shows the seconds."
)


class ModalBase(ModalScreen):
    DEFAULT_CSS = """
    ModalBase { align: center middle; }
    ModalBase > Vertical {
        width: 72; max-width: 95%; height: auto; max-height: 95%;
        border: round $primary; background: $surface; padding: 1 2;
    }
    ModalBase .title { text-style: bold; color: $primary; margin-bottom: 1; width: 100%; }
    ModalBase .hint { color: $text-muted; margin-top: 1; width: 100%; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Close", id="modal.close")
    ]

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class HelpScreen(ModalBase):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss_none", "Close", id="help.close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Label("tapedeck · keys", classes="title")
            yield Static(help_table(), id="help-keys")
            yield Static(HELP_TEXT, classes="hint")


class JumpDialog(ModalBase):
    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Jump to a step number or a time (UTC)", classes="title")
            yield Input(placeholder="e.g. 500 or 2024-01-02 13:00", id="jump-input")
            yield Label("enter to jump, esc to cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)


class OpenFileDialog(ModalBase):
    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Open data files (space-separated paths)", classes="title")
            yield Input(placeholder="data/BTCUSDT-5m.csv data/ETHUSDT-5m.csv", id="open-input")
            yield Label("enter to open, esc to cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.split() or None)


class PersonaPicker(ModalBase):
    """Choose a persona and a brain; the result reruns the same window from its start."""

    DEFAULT_CSS = """
    PersonaPicker > Vertical { width: 80; }
    PersonaPicker .lists { height: auto; width: 100%; }
    PersonaPicker #personas { width: 1fr; height: auto; max-height: 20; }
    PersonaPicker #brains { width: 16; height: auto; margin-left: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Close", id="picker.close"),
        Binding("tab", "app.focus_next", "Switch list", show=False),
    ]

    def __init__(
        self, personas: Sequence[tuple[str, str]], brains: Sequence[str], current: str, brain: str
    ) -> None:
        super().__init__()
        self._personas = list(personas)
        self._brains = list(brains)
        self._current = current
        self._brain = brain

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Persona · rerun the same window", classes="title")
            with Horizontal(classes="lists"):
                yield OptionList(
                    *(
                        Option(Text.assemble((name, "bold"), "\n", (desc or "", "dim")), id=name)
                        for name, desc in self._personas
                    ),
                    id="personas",
                )
                yield OptionList(*(Option(b, id=b) for b in self._brains), id="brains")
            yield Label("enter: rerun · tab: brain list · esc: cancel", classes="hint")

    def on_mount(self) -> None:
        personas = self.query_one("#personas", OptionList)
        from tui.sources import same_persona

        names = [n for n, _ in self._personas]
        for i, name in enumerate(names):
            if same_persona(name, self._current):
                personas.highlighted = i
        brains = self.query_one("#brains", OptionList)
        if self._brain in self._brains:
            brains.highlighted = self._brains.index(self._brain)
        personas.focus()

    def _chosen(self) -> tuple[str, str] | None:
        personas = self.query_one("#personas", OptionList)
        brains = self.query_one("#brains", OptionList)
        if personas.highlighted is None:
            return None
        persona = self._personas[personas.highlighted][0]
        brain = self._brains[brains.highlighted] if brains.highlighted is not None else self._brain
        return persona, brain

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(self._chosen())


class CompareSetup(ModalBase):
    """Pick 2 to 4 personas to compare."""

    DEFAULT_CSS = """
    CompareSetup > Vertical { width: 60; }
    CompareSetup SelectionList { width: 100%; height: auto; max-height: 12; }
    """

    def __init__(self, personas: Sequence[str], selected: Sequence[str]) -> None:
        super().__init__()
        self._personas = list(personas)
        self._selected = set(selected)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                "Compare 2 to 4 personas over this window (persona@brain: another brain)",
                classes="title",
            )
            yield SelectionList[str](
                *((p, p, p in self._selected) for p in self._personas), id="compare-list"
            )
            yield Button("Compare", variant="primary", id="compare-go")
            yield Label(
                "space: toggle · enter on the button: compare · esc: cancel", classes="hint"
            )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        chosen = list(self.query_one(SelectionList).selected)
        if not 2 <= len(chosen) <= 4:
            self.notify("choose 2 to 4 personas", severity="warning")
            return
        self.dismiss(chosen)


class PromptScreen(ModalBase):
    """The prompt a brain was given for the latest decision."""

    DEFAULT_CSS = """
    PromptScreen > Vertical { width: 110; height: 40; }
    PromptScreen VerticalScroll { height: 1fr; }
    """

    def __init__(self, title: str, prompt: str) -> None:
        super().__init__()
        self._title = title
        self._prompt = prompt

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self._title, classes="title")
            with VerticalScroll():
                yield Static(Text(self._prompt), markup=False)
            yield Label("esc to close", classes="hint")
