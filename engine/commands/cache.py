"""``tapedeck cache stats|clear``: the LLM decision cache."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    cache = subparsers.add_parser("cache", help="the LLM decision cache: stats or clear")
    sub = cache.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    for name, helptext, func in (
        ("stats", "entries, hits and size of the cache", stats_command),
        ("clear", "delete every cached decision", clear_command),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument(
            "--path",
            type=Path,
            help="cache file (default: $TAPEDECK_CACHE_PATH or the user cache folder)",
        )
        if name == "stats":
            p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)


def stats_command(args: argparse.Namespace) -> int:
    from engine.brain.cache import DecisionCache

    cache = DecisionCache(args.path)
    try:
        stats = cache.stats()
    finally:
        cache.close()
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"cache {stats['path']}")
    print(
        f"{stats['entries']} decisions, {stats['hits']} hits, {stats['size_bytes'] / 1024:.1f} KiB"
    )
    for g in stats["groups"]:
        label = f"{g['backend']} {g['model']} ({g['mode']})"
        print(f"  {label}: {g['entries']} decisions, {g['hits']} hits")
    return 0


def clear_command(args: argparse.Namespace) -> int:
    from engine.brain.cache import (
        CacheDamagedError,
        DecisionCache,
        default_cache_path,
        move_aside,
    )

    try:
        cache = DecisionCache(args.path)
        try:
            removed = cache.clear()
        finally:
            cache.close()
    except CacheDamagedError as exc:  # clear always resets: the damaged file goes aside
        path = Path(args.path).expanduser() if args.path else default_cache_path()
        moved = move_aside(path)
        DecisionCache(path).close()
        print(f"{exc.args[0].split(' (')[0]}: moved it to {moved}; started a new, empty one")
        return 0
    print(f"cleared {removed} cached decisions from {cache.path}")
    return 0
