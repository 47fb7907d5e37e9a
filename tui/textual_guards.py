"""Guards around Textual bugs the pinned version (8.2.8, the newest) still has.

``OptionList._move_page`` looks the highlighted option up in the line cache, which is
filled only when the list is laid out: PageDown or PageUp pressed right after options
arrive (``ctrl+p`` then PageDown at once, in the command palette) raised KeyError and
ended the app. The guard lays the lines out first and, when the list has no size yet,
moves by one option instead of a page.
"""

from __future__ import annotations

from textual.widgets import OptionList

_original_move_page = OptionList._move_page


def _move_page(self: OptionList, direction: int) -> None:
    self._update_lines()
    index = self.highlighted or 0
    if not self._lines or index not in self._index_to_line:
        if direction > 0:
            self.action_cursor_down()
        else:
            self.action_cursor_up()
        return
    _original_move_page(self, direction)


def install() -> None:
    """Install the guards (idempotent)."""
    OptionList._move_page = _move_page  # type: ignore[method-assign]
