"""The pane protocol: what every pane of the replay screen implements.

A screen keeps its models up to date from the runner's frames, then hands every pane the
same :class:`View` in one loop (``update_from``); a restart calls ``reset``. Adding a pane
is one class implementing the protocol and one line where the screen composes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from textual.widgets import Static

from tui.model import ReplayModel


@dataclass(frozen=True)
class View:
    """Everything a pane may read for one frame."""

    model: ReplayModel
    focus: str  # the instrument the chart and the per-instrument panes show
    variables: Mapping[str, str]  # the theme's colour variables
    metrics: Mapping[str, Any] | None = None  # engine.metrics of the run so far, if known
    plot_due: bool = True  # slow drawings (plotext curves) redraw only when True
    thinking: float | None = None  # seconds a brain has been thinking, while it does
    streamed: str = ""  # what that brain has streamed so far
    brain_label: str = ""
    cursor: int | None = None  # the focused instrument's inspected candle, if inspecting
    why: tuple[Any, ...] = ()  # engine.backtest.why lines for the latest step


@runtime_checkable
class Pane(Protocol):
    def update_from(self, view: View) -> None:
        """Show the state in ``view`` (called once per drawn frame)."""

    def reset(self) -> None:
        """Forget what was shown (the window restarts or the persona changes)."""


class TextPane(Static):
    """A bordered text pane with a fixed title; subclasses implement ``update_from``."""

    TITLE: ClassVar[str] = ""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="pane")

    def on_mount(self) -> None:
        self.border_title = self.TITLE

    def update_from(self, view: View) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        self.border_title = self.TITLE

    def show(self, content: Any, title: str | None = None) -> None:
        """Replace the content without a relayout (panes have fixed sizes)."""
        self.update(content, layout=False)
        if title is not None:
            self.border_title = title

    @property
    def rows(self) -> int:
        return max(1, self.content_size.height)
