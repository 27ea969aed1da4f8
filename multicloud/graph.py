"""The dependency graph of a plan, drawn as Mermaid or Graphviz DOT (`multicloud graph`).

One node per step of the plan (and per kept persistent resource), marked with what the step does;
an arrow goes from a resource to each resource it needs, as terraform graph draws them. Resources
of one service are grouped in a box named after it, those the whole app shares in one more.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from multicloud.planner import Action, Plan
from multicloud.render import SYMBOLS

FORMATS = ("mermaid", "dot")

STATES = {
    Action.CREATE: "create",
    Action.UPDATE: "update",
    Action.REPLACE: "replace",
    Action.DELETE: "delete",
    Action.NOOP: "same",
}
COLOURS = {  # fill, border
    "create": ("#e6f4ea", "#1e8e3e"),
    "update": ("#fef7e0", "#b06000"),
    "replace": ("#fce8e6", "#c5221f"),
    "delete": ("#f1f3f4", "#c5221f"),
    "same": ("#ffffff", "#5f6368"),
    "kept": ("#e8f0fe", "#1967d2"),
}


@dataclass(frozen=True)
class Node:
    """One drawn resource: its step id, label, state (a STATES value or "kept") and service."""

    id: str
    label: str
    state: str
    service: str | None


@dataclass(frozen=True)
class Graph:
    """The nodes and edges (from a step to a step it needs) of one plan."""

    title: str
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]


def plan_graph(plan: Plan) -> Graph:
    """The graph of a plan: every step and kept resource, each edge a dependency that both ends of
    which are drawn (a dependency on a resource outside a targeted plan is left out). Pure."""
    nodes: list[Node] = []
    needs: dict[str, tuple[str, ...]] = {}
    for change in plan.changes:
        resource = change.resource
        label = f"{SYMBOLS[change.action].strip() or '='} {change.id}".strip()
        nodes.append(Node(change.id, label, STATES[change.action], resource.service))
        needs[change.id] = resource.depends_on
    for resource in plan.kept:
        if resource.key not in needs:
            nodes.append(Node(resource.key, f"= {resource.key} (kept)", "kept", resource.service))
            needs[resource.key] = resource.depends_on
    drawn = set(needs)
    edges = tuple((node, dep) for node, deps in needs.items() for dep in sorted(deps) if dep in drawn)
    return Graph(f"{plan.app} on {plan.target}", tuple(nodes), edges)


def render(plan: Plan, output: str) -> str:
    """The plan's graph as `mermaid` or `dot` text; ValueError for another format."""
    graph = plan_graph(plan)
    if output == "mermaid":
        return "\n".join(mermaid_lines(graph))
    if output == "dot":
        return "\n".join(dot_lines(graph))
    raise ValueError(f"unknown graph format {output!r} (known: {', '.join(FORMATS)})")


def _by_service(graph: Graph) -> dict[str | None, list[Node]]:
    """Nodes grouped by service, the app-wide ones (service None) first, in plan order."""
    groups: dict[str | None, list[Node]] = {None: []}
    for node in graph.nodes:
        groups.setdefault(node.service, []).append(node)
    return groups


def _box_title(service: str | None) -> str:
    """The title of the box of a service's resources; the app-wide ones share the box "(app-wide)"."""
    return "(app-wide)" if service is None else service


def _mermaid_text(text: str) -> str:
    """Text safe inside a quoted Mermaid label (its entity codes for the characters it reads)."""
    return text.replace("#", "#35;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def mermaid_lines(graph: Graph) -> Iterator[str]:
    """A Mermaid flowchart of the graph, one box per service; node ids are n0, n1… in plan order."""
    ids = {node.id: f"n{i}" for i, node in enumerate(graph.nodes)}
    yield "flowchart LR"
    yield f"  %% {_mermaid_text(graph.title)}: an arrow points from a resource to one it needs"
    for index, (service, nodes) in enumerate(_by_service(graph).items()):
        if not nodes:
            continue
        yield f'  subgraph box{index}["{_mermaid_text(_box_title(service))}"]'
        for node in nodes:
            yield f'    {ids[node.id]}["{_mermaid_text(node.label)}"]:::{node.state}'
        yield "  end"
    for source, dep in graph.edges:
        yield f"  {ids[source]} --> {ids[dep]}"
    for state in sorted({node.state for node in graph.nodes}):
        fill, stroke = COLOURS[state]
        yield f"  classDef {state} fill:{fill},stroke:{stroke}"


def _slug(text: str) -> str:
    """An identifier made of the letters and digits of text."""
    return "".join(c if c.isalnum() else "_" for c in text)


def _dot_text(text: str) -> str:
    """Text inside a quoted DOT string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot_lines(graph: Graph) -> Iterator[str]:
    """A Graphviz digraph of the graph, one cluster per service."""
    yield f"digraph {_dot_text(graph.title)} {{"
    yield "  rankdir=LR;"
    yield '  node [shape=box, style="rounded,filled", fontname="sans-serif"];'
    yield f"  label={_dot_text(graph.title)};"
    for index, (service, nodes) in enumerate(_by_service(graph).items()):
        if not nodes:
            continue
        yield f"  subgraph {_dot_text(f'cluster_{index}')} {{"
        yield f"    label={_dot_text(_box_title(service))};"
        for node in nodes:
            fill, stroke = COLOURS[node.state]
            yield f'    {_dot_text(node.id)} [label={_dot_text(node.label)}, fillcolor="{fill}", color="{stroke}"];'
        yield "  }"
    for source, dep in graph.edges:
        yield f"  {_dot_text(source)} -> {_dot_text(dep)};"
    yield "}"
