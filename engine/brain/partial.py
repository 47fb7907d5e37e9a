"""Read the reasoning out of a JSON answer that is still being written: the first
``why`` (or ``reasoning``) string, or every instrument's ``why`` so far."""

from __future__ import annotations

import re

_KEY = re.compile(r'"(?:why|reasoning)"\s*:\s*"')
# an instrument's object opening on its reason: "NAME": {"why": "
_ITEM = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*\{\s*"why"\s*:\s*"')
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _hex4(text: str, at: int) -> int | None:
    digits = text[at : at + 4]
    if len(digits) < 4:
        return None
    try:
        return int(digits, 16)
    except ValueError:
        return 0xFFFD


def partial_reasoning(text: str) -> str | None:
    """The reasoning decoded so far, or None before its opening quote has arrived.

    Stops before an escape sequence that is not complete yet, so the result only grows
    as more text arrives.
    """
    match = _KEY.search(text)
    if match is None:
        return None
    return _string_from(text, match.end())


def partial_reasons(text: str) -> list[tuple[str, str]]:
    """(instrument, reason so far) for every instrument whose ``why`` has begun, in the
    order written; each reason only grows as more text arrives."""
    out = []
    for match in _ITEM.finditer(text):
        name = _string_from(match.group(0), 1)
        out.append((name, _string_from(text, match.end())))
    return out


def _string_from(text: str, i: int) -> str:
    """The JSON string whose first character is at ``i``, decoded up to its closing
    quote or as far as it is complete."""
    out: list[str] = []
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
            code = _hex4(text, i + 2)
            if code is None:
                break  # the four hex digits have not all arrived
            i += 6
            if 0xD800 <= code < 0xDC00:  # a high surrogate: its pair follows as \uXXXX
                if i + 6 > n:
                    break
                low = _hex4(text, i + 2) if text[i : i + 2] == "\\u" else None
                if low is not None and 0xDC00 <= low < 0xE000:
                    out.append(chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)))
                    i += 6
                else:
                    out.append("\ufffd")
                continue
            out.append("\ufffd" if 0xDC00 <= code < 0xE000 else chr(code))
            continue
        out.append(_ESCAPES.get(esc, esc))
        i += 2
    return "".join(out)
