"""Read a `.env` file the way docker compose reads it: `KEY=VALUE` lines, `#` comments, an optional
`export `, single quotes literal, double quotes with escapes, `${VAR}` / `$VAR` / `${VAR:-default}`
expanded in unquoted and double-quoted values."""

from __future__ import annotations

import re
from collections.abc import Mapping

_KEY = re.compile(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=[ \t]*")
_EXPANSION = re.compile(r"\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "\\$"}


class DotenvError(ValueError):
    """A line a `.env` file cannot hold; `line` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def parse_dotenv(text: str, environ: Mapping[str, str]) -> dict[str, str]:
    """Return the variables a `.env` text sets; raise DotenvError at the first bad line. Expansions
    read the process environment first, then the lines above (compose's order)."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        number, line = index + 1, lines[index].strip()
        index += 1
        if not line or line.startswith("#"):
            continue
        match = _KEY.match(line)
        if match is None:
            raise DotenvError(number, "expected KEY=VALUE (a name of letters, digits, '_', '.', '-')")
        rest = line[match.end() :]
        quote = rest[:1]
        if quote in ("'", '"'):
            body, index = _quoted(rest[1:], quote, lines, index, number)
            value = body if quote == "'" else _expand(_unescape(body), environ, values)
        else:
            value = _expand(re.split(r"\s+#", rest, maxsplit=1)[0].rstrip(), environ, values)
        values[match.group(1)] = value
    return values


def _quoted(start: str, quote: str, lines: list[str], index: int, number: int) -> tuple[str, int]:
    """The text up to the closing quote (it may span lines) and the index of the line after it;
    raise DotenvError when the quote is never closed or text follows it."""
    text = start
    while True:
        end = _closing(text, quote)
        if end >= 0:
            trailing = text[end + 1 :].strip()
            if trailing and not trailing.startswith("#"):
                raise DotenvError(number, f"unexpected text after the closing {quote}: {trailing!r}")
            return text[:end], index
        if index >= len(lines):
            raise DotenvError(number, f"the {quote} opened here is never closed")
        text += "\n" + lines[index]
        index += 1


def _closing(text: str, quote: str) -> int:
    """Index of the closing quote in text (double quotes may be escaped with a backslash), or -1."""
    escaped = False
    for i, char in enumerate(text):
        if quote == '"' and char == "\\" and not escaped:
            escaped = True
            continue
        if char == quote and not escaped:
            return i
        escaped = False
    return -1


def _unescape(text: str) -> str:
    """Apply double-quote escapes; `\\$` stays escaped so that expansion leaves it a literal `$`."""
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


def _expand(text: str, environ: Mapping[str, str], earlier: Mapping[str, str]) -> str:
    """Expand `${VAR}`, `${VAR:-d}`, `${VAR-d}` and `$VAR` from the environment, then earlier lines;
    unset expands to empty, as in compose."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "\\$":
            return "$"
        name = match.group(1) or match.group(4)
        value = environ.get(name, earlier.get(name))
        operator, default = match.group(2), match.group(3)
        if operator and (value is None or (operator == ":-" and value == "")):
            return default or ""
        return value or ""

    return _EXPANSION.sub(substitute, text)
