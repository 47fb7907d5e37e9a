"""The HTML report in a real headless Chromium: loads offline with no console error, the
chart is drawn where it should be, and hovering a trade row highlights its marks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.data.sample import SAMPLE_PATHS
from tests.browser import open_page, require_chromium

UP, DOWN, LONG = (0x1A, 0x98, 0x50), (0xD7, 0x30, 0x27), (0x24, 0x58, 0xD6)


def _count(pixels: np.ndarray, colour: tuple[int, int, int], tol: int = 40) -> int:
    """Pixels within ``tol`` of ``colour`` on every channel."""
    return int((np.abs(pixels.astype(int) - np.array(colour)) <= tol).all(axis=-1).sum())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_chromium()
    out = tmp_path_factory.mktemp("report") / "report.html"
    sample = [str(p) for p in SAMPLE_PATHS[:2]]
    code = main(["run", *sample, "--persona", "momentum", "--last", "3000", "--html", str(out)])
    assert code == 0
    return out


def test_report_loads_offline_without_errors_and_draws_the_chart(report: Path) -> None:
    hover = (
        "(function(){var r=document.querySelector('tr[data-trade=\"r0-t1\"]');"
        "r.dispatchEvent(new MouseEvent('mouseenter'));"
        "return document.querySelector('g[data-trade=\"r0-t1\"]').classList.contains('hl');})()"
    )
    page = open_page(
        report.as_uri(),
        width=1200,
        height=900,
        wait_for="document.body.dataset.ready === 'yes'",
        evaluate={
            "charts": "document.querySelectorAll('svg.chart.candles').length",
            "marks": "document.querySelectorAll('svg g.trade').length",
            "rows": "document.querySelectorAll('tr[data-trade]').length",
            "rect": "(function(){var b=document.querySelector('svg.chart.candles')"
            ".getBoundingClientRect();return [b.left,b.top,b.width,b.height];})()",
            "hover": hover,
        },
    )
    assert page.errors == []
    assert page.requests and all(u.startswith("file://") for u in page.requests), page.requests
    assert page.values["charts"] == 2
    assert page.values["marks"] == page.values["rows"] > 0
    assert page.values["hover"] is True
    left, top, width, height = page.values["rect"]
    assert width > 800 and height > 200 and top < 900
    img = np.asarray(page.image())
    chart = img[int(top) : int(min(top + height, img.shape[0])), int(left) : int(left + width)]
    ups, downs, longs = _count(chart, UP), _count(chart, DOWN), _count(chart, LONG, 30)
    # candles of both colours and long-entry markers are on screen, inside the chart
    assert ups > 500 and downs > 500 and longs > 20, (ups, downs, longs)
    # and nowhere above it: the page header is plain
    above = img[: int(top)]
    assert _count(above, UP) + _count(above, DOWN) == 0


def test_clicking_a_trade_draws_it_up_close(report: Path) -> None:
    click = "document.querySelector('tr[data-trade=\"r0-t2\"]').click(); true"
    page = open_page(
        report.as_uri(),
        width=1200,
        height=900,
        wait_for="document.body.dataset.ready === 'yes'",
        evaluate={
            "clicked": click,
            "shown": "document.getElementById('zoom-r0').getAttribute('data-shown')",
            "bars": "document.querySelectorAll('#zoom-r0 svg rect.bar-up, #zoom-r0 svg"
            " rect.bar-down').length",
            "levels": "document.querySelectorAll('#zoom-r0 g.trade line').length",
            "title": "document.querySelector('#zoom-r0 h3').textContent",
            "rect": "(function(){var s=document.querySelector('#zoom-r0 svg');"
            "s.scrollIntoView();var b=s.getBoundingClientRect();"
            "return [b.left,b.top,b.width,b.height];})()",
        },
    )
    assert page.errors == []
    assert page.values["shown"] == "r0-t2"
    assert 30 <= page.values["bars"] <= 240
    assert page.values["levels"] == 3  # stop, target and the entry-to-exit path
    assert page.values["title"].startswith("trade #2 up close: ")
    left, top, width, height = page.values["rect"]
    img = np.asarray(page.image())
    zoom = img[int(max(top, 0)) : int(top + height), int(left) : int(left + width)]
    assert _count(zoom, UP) > 300 and _count(zoom, DOWN) > 300
