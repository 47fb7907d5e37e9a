"""Run-log identity: the working tree against a git revision, byte for byte.

    python bench/runlog_identity.py [--rev b7658c9] [--base-tree DIR] [--keep DIR]

Runs the four personas (scalper, conservative, momentum, mean-reversion; rule brain) on
the real BTC 1m file and on the eight 5m files merged, once with the revision's code and
once with the working tree's, each in a subprocess whose working directory is that tree
(``engine.cli.main(["run", ..., "--out", LOG])``), then compares the run logs line by
line. The only lines allowed to differ are records the revision does not know about:
``rejection`` lines (added by the working tree) are dropped before comparing.

The revision's tree is a ``git worktree`` made in a temporary folder (or ``--base-tree``,
an existing checkout of it). Prints one row per workload and exits 1 on any difference.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data" / "real"
BTC_1M = DATA / "btc-perp-20211231-20220201_1m.csv"
ALT_5M = [
    DATA / "binance-5m" / f"{n}_BTC-5m.feather"
    for n in ("ADA", "DASH", "ETC", "ETH", "LTC", "NXT", "TRX", "XLM")
]
PERSONAS = ("scalper", "conservative", "momentum", "mean-reversion")
WORKLOADS = {"btc-1m": [BTC_1M], "alt-5m-x8": ALT_5M}
IGNORED_TYPES = ("rejection",)  # records the base revision does not write


def _run(tree: Path, persona: str, files: list[Path], out: Path) -> float:
    argv = ["run", *map(str, files), "--persona", persona, "--brain", "rules", "--out", str(out)]
    code = f"import sys; from engine.cli import main; sys.exit(main({argv!r}))"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: run {persona} failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - started


def _record_type(line: str) -> str:
    return str(json.loads(line).get("type", "?"))


def _records(path: Path) -> tuple[list[str], int]:
    kept, ignored = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if _record_type(line) in IGNORED_TYPES:
            ignored += 1
        else:
            kept.append(line)
    return kept, ignored


def _differences(a: list[str], b: list[str]) -> str:
    """Which record types differ, with the first differing line."""
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} records"
    differing = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    counts: dict[str, int] = {}
    for i in differing:
        counts[_record_type(a[i])] = counts.get(_record_type(a[i]), 0) + 1
    first = differing[0]
    where = next((k for k, (x, y) in enumerate(zip(a[first], b[first], strict=False)) if x != y), 0)
    return (
        ", ".join(f"{n} {kind} line(s)" for kind, n in counts.items())
        + f"; first at line {first + 1}: ...{a[first][max(0, where - 30) : where + 50]}"
        + f" != ...{b[first][max(0, where - 30) : where + 50]}"
    )


def _compare(base: Path, work: Path, out_dir: Path) -> int:
    failures = 0
    print(
        f"{'workload':10} {'persona':15} {'lines':>7} {'rejections':>10} {'base s':>7} "
        f"{'work s':>7}  result"
    )
    for label, files in WORKLOADS.items():
        for persona in PERSONAS:
            base_log = out_dir / f"base-{label}-{persona}.jsonl"
            work_log = out_dir / f"work-{label}-{persona}.jsonl"
            t_base = _run(base, persona, files, base_log)
            t_work = _run(work, persona, files, work_log)
            base_lines, base_ignored = _records(base_log)
            work_lines, work_ignored = _records(work_log)
            same = base_lines == work_lines and base_ignored == 0
            verdict = "identical" if same else "DIFFERENT: " + _differences(base_lines, work_lines)
            failures += not same
            print(
                f"{label:10} {persona:15} {len(work_lines):>7} {work_ignored:>10} "
                f"{t_base:>7.2f} {t_work:>7.2f}  {verdict}"
            )
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="b7658c9", help="the revision to compare against")
    parser.add_argument("--base-tree", type=Path, help="an existing checkout of --rev")
    parser.add_argument("--keep", type=Path, help="keep the run logs in this folder")
    args = parser.parse_args(argv)
    missing = [p for p in [BTC_1M, *ALT_5M] if not p.exists()]
    if missing:
        print(f"real data not available: {missing[0]}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="runlog-identity-") as tmp:
        tmp_dir = Path(tmp)
        out_dir = args.keep or tmp_dir / "logs"
        out_dir.mkdir(parents=True, exist_ok=True)
        base = args.base_tree
        made = False
        if base is None:
            base = tmp_dir / "base"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(base), args.rev],
                cwd=REPO,
                check=True,
                capture_output=True,
            )
            made = True
        try:
            print(f"base: {args.rev} ({base}); work: {REPO}")
            failures = _compare(base.resolve(), REPO, out_dir)
        finally:
            if made:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(base)],
                    cwd=REPO,
                    check=False,
                    capture_output=True,
                )
    print("all run logs identical" if not failures else f"{failures} run log(s) differ")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
