"""Findings about a spec (a provider's capability limits, bad settings) placed at their line."""

from __future__ import annotations

from multicloud.errors import CapabilityError, FieldPath, Finding, Problem, UserError, spec_finding
from multicloud.spec.messages import dotted
from multicloud.spec.models import Spec


def spec_path(spec: Spec, target: str, path: FieldPath) -> FieldPath:
    """Where in the file a finding about `services.NAME...` on a target is written: the target's
    override of that field when it has one, else the service's own field; a port given by name
    becomes its index in `ports`."""
    if len(path) < 2 or path[0] != "services":
        return path
    service, rest = str(path[1]), list(path[2:])
    if len(rest) >= 2 and rest[0] == "ports" and isinstance(rest[1], str):
        names = [p.name for p in spec.services[service].ports] if service in spec.services else []
        if rest[1] in names:
            rest[1] = names.index(rest[1])
    override = ("targets", target, "overrides", service)
    if rest and (*override, rest[0]) in spec.source.marks:
        return (*override, *rest)
    return ("services", service, *rest)


def locate_findings(spec: Spec, target: str, findings: list[Finding]) -> list[Problem]:
    """Each finding as a spec problem at file:line:col (the whole-spec ones at the target)."""
    problems = []
    for path, message in findings:
        where = spec_path(spec, target, path) if path else ("targets", target)
        problems.append(Problem(*spec.source.where(where), dotted(where), message))
    return problems


def located(spec: Spec, target: str, error: CapabilityError) -> CapabilityError:
    """The same CapabilityError with its findings placed in the spec file."""
    return CapabilityError(
        error.target, error.provider, error.findings, problems=locate_findings(spec, target, error.findings),
        hint=error.hint,
    )


def spec_complaint(spec: Spec, target: str, provider: str, error: UserError) -> CapabilityError | None:
    """A provider's UserError about one spec field (its message starts with the field's path, e.g.
    `services.api.resources.cpu: ...`) as a finding at its line; None for any other error."""
    if type(error) is not UserError:
        return None
    finding = spec_finding(error.message)
    if finding is None:
        return None
    return located(spec, target, CapabilityError(target, provider, [finding], hint=error.hint))
