"""Stored values as a terminal shows them: the CLI's tables and ``tail``'s lines.

Stored text is anyone's (a run name, an exception, a tool's output): a control character
in it would reach the terminal and act there (an OSC sequence sets the window title, ``\\r``
overwrites the line, ``\\x1b[2J`` clears the screen). :func:`printable` shows each such
character escaped, and leaves every other character, non-ASCII letters and emoji
included, as it is. Numbers are rounded for reading (:func:`cell`). JSON and CSV output
are data, kept exact: only what is printed for people goes through here.
"""

from __future__ import annotations

import math
from typing import Any

#: Escapes for the control characters of C0, DEL and C1, and for the Unicode format
#: characters that reorder or hide text on screen (bidirectional overrides and isolates).
_ESCAPES = {
    **{code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]},
    **{ord(c): e for c, e in (("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))},
    **{code: f"\\u{code:04x}" for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]},
}

#: A cell's widest, in characters; a longer one is cut and ends with :data:`MORE`.
CELL_WIDTH = 60
MORE = "…"

#: Decimals a float is shown with (USD to 1/100 of a cent, ratios to 0.01 %).
DECIMALS = 4


def printable(text: str) -> str:
    """``text`` with every control character shown escaped (``\\x1b``, ``\\r``, ``\\n``)."""
    return text.translate(_ESCAPES)


def number(value: float) -> str:
    """A float rounded to :data:`DECIMALS` (``0.23266499999999998`` -> ``0.2327``); one
    that rounds to 0 without being 0 keeps two significant digits (``1.2e-05``)."""
    if not math.isfinite(value):
        return repr(value)
    rounded = round(value, DECIMALS)
    if rounded == 0 and value != 0:
        return f"{value:.2g}"
    return repr(rounded + 0.0)  # + 0.0: no "-0.0"


def cell(value: Any, width: int = CELL_WIDTH) -> str:
    """A value as a table shows it: NULL empty, floats rounded, text printable, cut at
    ``width`` characters with :data:`MORE` at the end."""
    if value is None:
        return ""
    text = number(value) if isinstance(value, float) else printable(str(value))
    return text if len(text) <= width else text[: width - len(MORE)] + MORE
