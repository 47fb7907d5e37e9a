"""The self-contained HTML report of one or several runs (``tapedeck report``, ``run --html``)."""

from engine.report.html import render, write_report
from engine.report.model import ReportRun, from_result, from_run_log

__all__ = ["ReportRun", "from_result", "from_run_log", "render", "write_report"]
