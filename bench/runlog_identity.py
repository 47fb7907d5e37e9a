"""Run-log identity: the working tree against a git revision, byte for byte.

    python bench/runlog_identity.py [--rev b7658c9] [--base-tree DIR] [--keep DIR]
                                   [--allow-added-keys]

Runs the four personas (scalper, conservative, momentum, mean-reversion; rule brain) on
the real BTC 1m file and on the eight 5m files merged, once with the revision's code and
once with the working tree's, each in a subprocess whose working directory is that tree
(``engine.cli.main(["run", ..., "--out", LOG])``), then compares the run logs line by
line. The only lines allowed to differ are records the revision does not know about:
``rejection`` lines (added by the working tree) are dropped before comparing. Records that
differ are reported by type; when every value the base wrote is still there, unchanged,
and the work tree only adds keys, the row says which keys (``--allow-added-keys`` then
passes: other issues add fields to records on purpose, e.g. a data report in ``config``).

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
from typing import Any

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


def _added_keys(old: Any, new: Any, path: str = "") -> set[str] | None:
    """The keys ``new`` adds to ``old`` (dotted paths) when every value ``old`` has is
    the same in ``new``; None when some value differs or is missing."""
    if isinstance(old, dict) and isinstance(new, dict):
        added = {f"{path}{k}" for k in new.keys() - old.keys()}
        for k, v in old.items():
            if k not in new:
                return None
            inner = _added_keys(v, new[k], f"{path}{k}.")
            if inner is None:
                return None
            added |= inner
        return added
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return None
        added = set()
        for x, y in zip(old, new, strict=True):
            inner = _added_keys(x, y, f"{path}[].")
            if inner is None:
                return None
            added |= inner
        return added
    return set() if old == new and type(old) is type(new) else None


def _differences(a: list[str], b: list[str]) -> tuple[str, bool]:
    """Which record types differ, and whether every difference is only keys the work
    tree adds (the values the base wrote are all there, unchanged)."""
    if len(a) != len(b):
        return f"{len(a)} vs {len(b)} records", False
    counts: dict[str, int] = {}
    added: dict[str, set[str]] = {}
    only_added = True
    first = None
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x == y:
            continue
        first = i if first is None else first
        kind = _record_type(x)
        counts[kind] = counts.get(kind, 0) + 1
        keys = _added_keys(json.loads(x), json.loads(y))
        if keys is None:
            only_added = False
        else:
            added.setdefault(kind, set()).update(keys)
    text = ", ".join(f"{n} {kind} line(s)" for kind, n in counts.items())
    if only_added:
        keys = "; ".join(f"{kind}: {', '.join(sorted(k))}" for kind, k in added.items())
        return f"{text} differ only by added keys ({keys})", True
    assert first is not None
    x, y = a[first], b[first]
    where = next((k for k, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), 0)
    return (
        f"{text}; first at line {first + 1}: ...{x[max(0, where - 30) : where + 50]}"
        f" != ...{y[max(0, where - 30) : where + 50]}"
    ), False


def _compare(base: Path, work: Path, out_dir: Path, allow_added: bool) -> tuple[int, int]:
    """(run logs that fail, run logs that are not byte-identical)."""
    failures = differing = 0
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
            # byte for byte; or the same apart from rejection lines the base does not write
            same = base_log.read_bytes() == work_log.read_bytes() or (
                base_lines == work_lines and base_ignored == 0
            )
            verdict, ok = "identical", same
            if not same:
                text, only_added = _differences(base_lines, work_lines)
                ok = only_added and allow_added and base_ignored == 0
                verdict = ("values identical: " if ok else "DIFFERENT: ") + text
            failures += not ok
            differing += not same
            print(
                f"{label:10} {persona:15} {len(work_lines):>7} {work_ignored:>10} "
                f"{t_base:>7.2f} {t_work:>7.2f}  {verdict}"
            )
    return failures, differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="b7658c9", help="the revision to compare against")
    parser.add_argument("--base-tree", type=Path, help="an existing checkout of --rev")
    parser.add_argument("--keep", type=Path, help="keep the run logs in this folder")
    parser.add_argument(
        "--allow-added-keys",
        action="store_true",
        help="pass when the only differences are keys the working tree adds to records "
        "(every value the base wrote unchanged); byte identity is the default",
    )
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
            failures, differing = _compare(base.resolve(), REPO, out_dir, args.allow_added_keys)
        finally:
            if made:
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(base)],
                    cwd=REPO,
                    check=False,
                    capture_output=True,
                )
    total = len(WORKLOADS) * len(PERSONAS)
    print(
        f"{total - differing} of {total} run logs byte-identical"
        + (
            f", {differing - failures} identical in values apart from added keys"
            if differing
            else ""
        )
        + (f", {failures} DIFFERENT" if failures else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
