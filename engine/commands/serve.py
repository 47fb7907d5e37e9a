"""``tapedeck serve [DATA...]``: the replay TUI in a web browser, through textual-serve.

Each browser tab gets its own ``tapedeck replay`` process (textual-serve runs the
command with Textual's web driver and streams it over a websocket). The page and its
JavaScript come from the textual-serve package, so it works offline; the one thing
its page fetches from the internet (a web font) is replaced by the same font shipped in
the package.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import tempfile
from pathlib import Path

from engine.errors import TapedeckError

# any stylesheet from the internet (the page has one: a web font from a CDN)
REMOTE_LINK = re.compile(r'<link\b[^>]*href="https?://[^"]*"[^>]*>', re.S)
LOCAL_FONT = (
    '<style>@font-face { font-family: "Roboto Mono"; '
    'src: url("{{ config.static.url }}fonts/RobotoMono-VariableFont_wght.ttf"); }</style>'
)


class ServeError(TapedeckError):
    """``tapedeck serve`` cannot start (the message says why)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("serve", help="the replay TUI in a web browser (textual-serve)")
    p.add_argument(
        "data",
        nargs="*",
        metavar="DATA",
        help="candle files or EXCHANGE:SYMBOL (default: the bundled sample)",
    )
    p.add_argument("--persona", help="built-in persona name or a .toml path")
    p.add_argument("--brain", help="rules, ollama, llamacpp or auto (default rules)")
    p.add_argument("--speed", help="1x, 10x, 100x, 1000x or max (default 10x)")
    p.add_argument("--start", help="window start (UTC time)")
    p.add_argument("--end", help="window end (UTC time)")
    p.add_argument("--theme", help="tapedeck-dark, tapedeck-light, tapedeck-amber")
    p.add_argument("--play", action="store_true", help="start playing at once")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--public-url", help="the URL browsers use, when behind a proxy")
    p.set_defaults(func=serve_command)


def replay_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs for each browser session."""
    from engine.fetch.store import resolve_data_args

    data = resolve_data_args(list(args.data))
    missing = [d for d in data if not Path(d).exists()]
    if missing:
        raise ServeError(f"{missing[0]}: no such file")
    argv = [sys.executable, "-m", "tui.main", "replay", *(str(Path(d).resolve()) for d in data)]
    for flag in ("persona", "brain", "speed", "start", "end", "theme"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag}", str(value)]
    if args.play:
        argv.append("--play")
    return shlex.join(argv)


def offline_templates(folder: Path) -> Path:
    """textual-serve's page template with its web-font link replaced by the packaged font."""
    import textual_serve

    source = Path(textual_serve.__file__).parent / "templates" / "app_index.html"
    text = source.read_text(encoding="utf-8")
    text = REMOTE_LINK.sub(lambda m: LOCAL_FONT, text)
    # no favicon: the browser would ask for /favicon.ico and log the 404 as an error
    text = text.replace("<head>", '<head>\n    <link rel="icon" href="data:,">', 1)
    (folder / "app_index.html").write_text(text, encoding="utf-8")
    return folder


def serve_command(args: argparse.Namespace) -> int:
    try:
        from textual_serve.server import Server
    except ImportError:  # pragma: no cover - a dependency
        raise ServeError("tapedeck serve needs textual-serve: pip install textual-serve") from None
    command = replay_command(args)
    with tempfile.TemporaryDirectory(prefix="tapedeck-serve-") as tmp:
        server = Server(
            command,
            host=args.host,
            port=args.port,
            title="tapedeck",
            public_url=args.public_url,
            templates_path=offline_templates(Path(tmp)),
        )
        server.serve()
    return 0
