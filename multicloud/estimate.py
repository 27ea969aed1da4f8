"""`multicloud estimate`: the monthly cost of a spec on each target, from the providers' price tables.

Per service: billed vCPU and memory per replica (as the table's sizing rounds them), replicas, hours
(every replica runs all month); per app: the load balancer when a port is public, public IPs, and an
assumed amount of internet egress. Pure: no target is contacted.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from multicloud.errors import PluginError
from multicloud.pricing import PriceTable
from multicloud.spec.targets import TargetSpec

GIB = 1024**3
DEFAULT_EGRESS_GIB = 100.0
ASSUMPTIONS = (
    "every replica runs all month; scaling above replicas, requests and free tiers are not counted",
    "not counted: managed databases, secrets, logs, image registries, DNS and service discovery",
)

Sizing = Callable[[str, float, int], tuple[float, float]]


@dataclass(frozen=True)
class Line:
    """One priced item of a target: what it is, how much of it, what it costs a month."""

    item: str
    quantity: str
    monthly: float
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetEstimate:
    """What one target costs a month, line by line, and under which prices."""

    target: str
    provider: str
    table: PriceTable | None
    lines: tuple[Line, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        """The sum of the lines (unrounded)."""
        return sum(line.monthly for line in self.lines)


def _sizing(table: PriceTable) -> Sizing:
    """The table's sizing function (loaded from its module:function), else billing as requested."""
    if table.sizing is None:
        return lambda _service, cpu, memory: (cpu, memory / GIB)
    found: Sizing = _hook(table, "sizing", table.sizing)
    return found


def _placed(table: PriceTable, spec: TargetSpec) -> TargetSpec:
    """The target spec as the provider deploys it (the table's placement function), else as written."""
    if table.placement is None:
        return spec
    placed: TargetSpec = _hook(table, "placement", table.placement)(spec)
    return placed


def _hook(table: PriceTable, what: str, where: str) -> Any:
    """A function a price table names as module:function; PluginError when it cannot be loaded."""
    module, _, name = where.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"price table of {table.provider}: {what} {where} cannot be loaded: {exc}") from exc


def estimate_target(
    spec: TargetSpec, table: PriceTable | None, *, egress_gib: float = DEFAULT_EGRESS_GIB
) -> TargetEstimate:
    """The monthly estimate of one target spec under a price table (None: a target without prices,
    which gets a note and no lines). Raises UserError where the sizing refuses a service's resources."""
    if table is None:
        note = f"provider {spec.provider} ships no price table; give one with --prices FILE"
        return TargetEstimate(spec.target, spec.provider, None, notes=(note,))
    hours = table.hours_per_month
    size = _sizing(table)
    spec = _placed(table, spec)
    lines: list[Line] = []
    replicas = 0
    for name, service in spec.services.items():
        vcpu, gib = size(name, service.resources.cpu, service.resources.memory)
        hourly = vcpu * table.vcpu_hour + gib * table.gib_hour
        replicas += service.replicas
        lines.append(Line(
            f"service {name}", f"{vcpu:g} vCPU, {gib:g} GiB x {service.replicas}, {hours:g} h",
            service.replicas * hours * hourly,
            {"vcpu": vcpu, "memory_gib": gib, "replicas": service.replicas, "hours": hours},
        ))
    public = any(p.expose == "public" for s in spec.services.values() if s.replicas for p in s.ports)
    lines += _load_balancer(table, public)
    lines += _public_ips(table, public, replicas)
    lines.append(Line(
        "egress", f"{egress_gib:g} GiB to the internet at {table.egress_gib:g}/GiB", egress_gib * table.egress_gib,
        {"gib": egress_gib, "price_per_gib": table.egress_gib},
    ))
    return TargetEstimate(spec.target, spec.provider, table, tuple(lines), _region_notes(spec, table) + table.notes)


def _load_balancer(table: PriceTable, public: bool) -> list[Line]:
    """The load balancer line, when the app has a public port and the target uses one."""
    balancer = table.load_balancer
    if balancer is None or not public:
        return []
    hourly = balancer.hour + balancer.capacity_units * balancer.capacity_unit_hour
    plural = "" if balancer.capacity_units == 1 else "s"
    units = f" + {balancer.capacity_units:g} capacity unit{plural}" if balancer.capacity_units else ""
    return [Line(
        "load balancer", f"1 {balancer.name}{units}, {table.hours_per_month:g} h", hourly * table.hours_per_month,
        {"name": balancer.name, "count": 1, "capacity_units": balancer.capacity_units},
    )]


def _public_ips(table: PriceTable, public: bool, replicas: int) -> list[Line]:
    """The public IPv4 line: the load balancer's, and each replica's or the app's, as the table says."""
    holders: list[str] = []
    count = 0
    if table.load_balancer is not None and public and table.load_balancer.public_ips:
        count += table.load_balancer.public_ips
        holders.append(f"{table.load_balancer.public_ips} of the load balancer")
    if table.public_ips_per == "replica" and replicas:
        count += replicas
        holders.append(f"{replicas} of the replicas")
    elif table.public_ips_per == "app" and public:
        count += 1
        holders.append("1 of the app")
    if not count:
        return []
    quantity = f"{count} ({', '.join(holders)}) at {table.public_ip_hour:g}/h, {table.hours_per_month:g} h"
    return [Line("public IPs", quantity, count * table.public_ip_hour * table.hours_per_month, {"count": count})]


def _region_notes(spec: TargetSpec, table: PriceTable) -> tuple[str, ...]:
    """A note when the target's region is not the one the prices are for."""
    if table.region_setting is None:
        return ()
    region = spec.settings.get(table.region_setting)
    if region is None or str(region) == table.region:
        return ()
    return (f"prices are for {table.region}; this target is in {region} (give its prices with --prices)",)


def money(amount: float) -> str:
    """An amount rounded to cents."""
    return f"{amount:,.2f}"


def estimate_text(app: str, estimates: Sequence[TargetEstimate], *, egress_gib: float) -> str:
    """The estimates as one table for people, then the prices used and the assumptions."""
    rows = [("TARGET", "ITEM", "QUANTITY", "MONTHLY")]
    for each in estimates:
        currency = each.table.currency if each.table else ""
        for line in each.lines:
            rows.append((each.target, line.item, line.quantity, money(line.monthly)))
        if each.table is not None:
            rows.append((each.target, "total", "", f"{money(each.total)} {currency}"))
        else:
            rows.append((each.target, "total", "no price table", "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    out = [f"Monthly estimate of {app} ({egress_gib:g} GiB of egress assumed per target; --egress-gib changes it)", ""]
    for row in rows:
        left = "  ".join(f"{cell:<{width}}" for cell, width in zip(row[:3], widths, strict=False))
        out.append(f"{left}  {row[3]:>{widths[3]}}".rstrip())
    out += ["", "Prices:"]
    for each in estimates:
        if each.table is None:
            out.append(f"  {each.target}: none")
            continue
        table = each.table
        out.append(f"  {each.target}: {table.provider} {table.region}, {table.date}, {table.currency} ({table.source})")
    out += ["", "Assumptions and notes:", *(f"  {text}" for text in ASSUMPTIONS)]
    for each in estimates:
        out += [f"  {each.target}: {note}" for note in each.notes]
    return "\n".join(out)


def estimate_json(app: str, estimates: Sequence[TargetEstimate], *, egress_gib: float) -> dict[str, Any]:
    """The estimates for machines: every line with its figures, the totals, the prices and assumptions."""
    targets = []
    for each in estimates:
        table = each.table
        targets.append({
            "target": each.target,
            "provider": each.provider,
            "prices": None if table is None else {
                "region": table.region, "date": table.date, "currency": table.currency, "source": table.source,
                "hours_per_month": table.hours_per_month,
            },
            "lines": [{"item": line.item, "quantity": line.quantity, "monthly": round(line.monthly, 2), **line.detail}
                      for line in each.lines],
            "total": None if table is None else round(each.total, 2),
            "notes": list(each.notes),
        })
    return {"app": app, "egress_gib": egress_gib, "assumptions": list(ASSUMPTIONS), "targets": targets}
