"""Read the ``reasoning`` string out of a JSON answer that is still being written."""

from __future__ import annotations

import json
import re

_KEY = re.compile(r'"reasoning"\s*:\s*"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def partial_reasoning(text: str) -> str | None:
    """The reasoning decoded so far, or None before its opening quote has arrived.

    Stops before an escape sequence that is not complete yet, so the result only grows
    as more text arrives.
    """
    match = _KEY.search(text)
    if match is None:
        return None
    out: list[str] = []
    i = match.end()
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            break
        esc = text[i + 1]
        if esc == "u":
            if i + 6 > n:
                break
            try:
                out.append(json.loads(f'"{text[i : i + 6]}"'))
            except ValueError:
                # A lone surrogate half: wait for its pair, or show nothing for it.
                if i + 12 <= n and text[i + 6 : i + 8] == "\\u":
                    try:
                        out.append(json.loads(f'"{text[i : i + 12]}"'))
                        i += 12
                        continue
                    except ValueError:
                        pass
                elif i + 12 > n:
                    break
            i += 6
            continue
        out.append(_ESCAPES.get(esc, esc))
        i += 2
    return "".join(out)
