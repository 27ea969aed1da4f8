"""Compose's `${VAR}` interpolation: rewritten as the spec's `${env.VAR}` (resolved when the spec is loaded,
so no value is written into the spec), or resolved now where the spec needs a number or a structure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from multicloud import inputs
from multicloud.spec.dotenv import DotenvError, parse_dotenv
from multicloud.spec.files import MAX_SPEC_BYTES, UnreadableFileError, decode, read_limited

_COMPOSE_VAR = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)|\$\{[^}]*\}?"
)


class InterpolationError(ValueError):
    """A `${...}` compose itself would refuse (or one the spec cannot say, such as `${VAR:+alt}`)."""


def translate(text: str, *, keep_escapes: bool) -> str:
    """The text with each compose variable written as the spec's `${env.NAME[:-default]}`; `$$` stays
    `$$` where the spec reads it as a literal `$` (keep_escapes: env, command, entrypoint), else becomes `$`.
    Raise InterpolationError for a form the spec cannot say."""

    def rewrite(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$$":
            return whole if keep_escapes else "$"
        name = match.group(1) or match.group(4)
        if name is None:
            raise InterpolationError(f"{whole!r} is not a compose variable (${{NAME}}, ${{NAME:-default}}, $NAME)")
        operator, argument = match.group(2), match.group(3) or ""
        if operator is None:  # compose reads an unset variable as empty
            return f"${{env.{name}-}}"
        if operator in (":?", "?"):  # fails when unset: ${env.NAME} does too
            return f"${{env.{name}}}"
        if operator in (":-", "-"):
            return f"${{env.{name}{operator}{argument}}}"
        raise InterpolationError(f"{whole!r}: the spec has no `{operator}` form (only :- and -)")

    return _COMPOSE_VAR.sub(rewrite, text)


def resolve(text: str, environ: Mapping[str, str]) -> str:
    """The text with compose variables replaced by their values now (as compose does); raise
    InterpolationError for `${NAME:?message}` when NAME is unset and for malformed forms."""

    def value(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        if name is None:
            raise InterpolationError(f"{whole!r} is not a compose variable (${{NAME}}, ${{NAME:-default}}, $NAME)")
        found, operator, argument = environ.get(name), match.group(2), match.group(3) or ""
        unset = found is None or (found == "" and operator is not None and operator.startswith(":"))
        if operator in (":-", "-") and unset:
            return argument
        if operator in (":?", "?") and unset:
            raise InterpolationError(f"{name} is required: {argument or 'not set'}")
        if operator in (":+", "+"):
            return "" if unset else argument
        return found or ""

    return _COMPOSE_VAR.sub(value, text)


def project_environment(directory: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables compose interpolates with: the `.env` in the project directory, under the
    process environment (which wins); raise InterpolationError naming the `.env` line that is bad."""
    environ = dict(inputs.environ() if environ is None else environ)
    path = Path(directory, ".env")
    if not path.is_file():
        inputs.note_file(path, None)
        return environ
    try:
        values = parse_dotenv(decode(read_limited(str(path), MAX_SPEC_BYTES)), environ)
    except DotenvError as exc:
        raise InterpolationError(f"{path}:{exc.line}: {exc}") from None
    except UnreadableFileError as exc:
        raise InterpolationError(f"{path}:{exc.line}: {exc}") from None
    return {**values, **environ}
