"""mkdocs hooks (mkdocs.yml): fill in the generated parts of the docs while the site is built.

`<!-- multicloud: readme -->` becomes the README up to its Layout section (links made relative to docs/);
`<!-- multicloud: spec-reference -->` becomes the field reference generated from the spec's models;
`<!-- multicloud: graph TARGET -->` becomes a Mermaid picture of what the IoT example becomes on
TARGET, drawn by `multicloud graph -o mermaid --desired` (no target is contacted, no network used).
A marker that cannot be filled fails the build.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "iot-backend" / "multicloud.yaml"
MARKER = re.compile(r"<!-- multicloud: (readme|spec-reference|graph ([a-z][a-z0-9-]*)) -->")


def graph_mermaid(target: str, spec: Path = EXAMPLE) -> str:
    """What `multicloud graph -f SPEC -t TARGET --desired -o mermaid` prints; RuntimeError if it fails."""
    from multicloud.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["graph", "-f", str(spec), "-t", target, "--desired", "-o", "mermaid"])
    if code != 0:
        raise RuntimeError(f"multicloud graph -t {target} failed ({code}): {err.getvalue().strip()}")
    return out.getvalue()


def readme_intro(readme: Path = ROOT / "README.md") -> str:
    """The README up to its Layout section, its links to docs/ made relative to the docs folder."""
    text = readme.read_text(encoding="utf-8")
    intro = text.split("\n## Layout", 1)[0]
    return intro.replace("](docs/", "](")


def fill(markdown: str) -> str:
    """The page with each generated part in place of its marker."""

    def generated(match: re.Match[str]) -> str:
        if match.group(2):
            return f"```mermaid\n{graph_mermaid(match.group(2))}```"
        if match.group(1) == "readme":
            return readme_intro()
        from multicloud.spec.reference import reference_markdown

        return reference_markdown(ROOT)

    return MARKER.sub(generated, markdown)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """mkdocs event: a page's Markdown before it is rendered."""
    return fill(markdown)
