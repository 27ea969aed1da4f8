"""Price tables for `multicloud estimate`: what a target's compute, load balancers, public IPs and
egress cost, for one region on one date.

Each provider ships its table as `prices.yaml` beside its top-level package's `__init__.py`; it is
found through the provider's entry point and read as data (no provider code, no cloud SDK is
imported to find or read it). `--prices FILE` overrides any field of any table, or gives a whole
table for a provider that ships none:

    aws-ecs: {vcpu_hour: 0.05, region: us-east-1, date: "2026-11"}
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from multicloud.errors import FieldPath, Problem, SpecError

PRICES_FILE = "prices.yaml"


class Priced(BaseModel):
    """Base: unknown fields are errors; field docstrings describe the fields."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class LoadBalancer(Priced):
    """The load balancer an app gets on this target when any of its ports is public."""

    name: str = Field(min_length=1)
    """what it is, e.g. Network Load Balancer"""
    hour: float = Field(ge=0)
    """price per hour"""
    capacity_unit_hour: float = Field(default=0, ge=0)
    """price per capacity unit and hour (NLCU, LCU)"""
    capacity_units: float = Field(default=0, ge=0)
    """capacity units assumed in use all month"""
    public_ips: int = Field(default=0, ge=0)
    """public IPv4 addresses it holds (one per zone), priced at public_ip_hour"""


class PriceTable(Priced):
    """List prices of one provider in one region, as of one date."""

    provider: str = Field(min_length=1)
    """the provider these prices are for"""
    region: str = Field(min_length=1)
    """the region they are for"""
    region_setting: str | None = None
    """the target setting naming a target's region, to warn when it is not `region`"""
    date: str = Field(pattern=r"^\d{4}-\d{2}(-\d{2})?$")
    """when they were taken from the source (YYYY-MM or YYYY-MM-DD)"""
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    source: str = Field(min_length=1)
    """where they come from"""
    hours_per_month: float = Field(default=730, gt=0, le=744)
    vcpu_hour: float = Field(ge=0)
    """price of one billed vCPU for an hour"""
    gib_hour: float = Field(ge=0)
    """price of one billed GiB of memory for an hour"""
    sizing: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """module:function(service, cpu, memory_bytes) -> (billed vCPU, billed GiB), for a platform that
    bills fixed sizes (Fargate); default: billed as requested. The module must import no cloud SDK."""
    placement: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """module:function(target spec) -> the target spec with the resources the provider really deploys
    (e.g. gcp-cloudrun raises cpu to 1 where Cloud Run requires it); default: as written. No cloud SDK."""
    load_balancer: LoadBalancer | None = None
    public_ip_hour: float = Field(default=0, ge=0)
    """price of one public IPv4 address for an hour"""
    public_ips_per: Literal["replica", "app", "none"] = "none"
    """who holds a public IP besides the load balancer: each replica, the app (when a port is public), nobody"""
    egress_gib: float = Field(default=0, ge=0)
    """price of one GiB sent to the internet"""
    notes: tuple[str, ...] = ()
    """what else a reader should know about these figures"""


def shipped_table(provider: str) -> Path | None:
    """The price table the named provider's distribution ships, None when it ships none (or is not
    installed). Found from its entry point's package; nothing is imported."""
    from multicloud.registry import available

    for plugin in available():
        if plugin.name == provider:
            package = plugin.value.split(":")[0].split(".")[0]
            spec = importlib.util.find_spec(package)
            for folder in (spec.submodule_search_locations or []) if spec else []:
                path = Path(folder) / PRICES_FILE
                if path.is_file():
                    return path
    return None


def _read(path: Path) -> tuple[Any, dict[FieldPath, tuple[int, int]]]:
    """A YAML file's data and the line and column of each field; SpecError naming the file if unreadable."""
    from multicloud.spec.loader import parse_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Problem(str(path), 1, 1, "", f"cannot read the price file: {exc}")]) from None
    return parse_yaml(text, str(path))


def price_tables(providers: Iterable[str], override: str | None = None) -> dict[str, PriceTable]:
    """Each named provider's price table: its shipped one with `override`'s fields over it (a mapping
    of provider to fields). Providers with neither are left out. SpecError lists every problem at
    its file, line and field."""
    wanted = list(dict.fromkeys(providers))
    given: dict[str, Any] = {}
    given_marks: dict[FieldPath, tuple[int, int]] = {}
    problems: list[Problem] = []
    if override is not None:
        data, given_marks = _read(Path(override))
        if not isinstance(data, dict):
            raise SpecError([Problem(override, 1, 1, "", "a price file is a mapping of provider names to prices")])
        given = data
        problems += _unknown_providers(override, given, given_marks)
    tables: dict[str, PriceTable] = {}
    for provider in wanted:
        path = shipped_table(provider)
        base: Any = {}
        base_marks: dict[FieldPath, tuple[int, int]] = {}
        if path is not None:
            base, base_marks = _read(path)
        extra = given.get(provider)
        if path is None and extra is None:
            continue
        if extra is not None and not isinstance(extra, dict):
            line, column = given_marks.get((provider,), (1, 1))
            problems.append(Problem(str(override), line, column, provider, "give a mapping of price fields"))
            continue
        merged = _merged(base if isinstance(base, dict) else {}, extra or {})
        try:
            tables[provider] = PriceTable.model_validate({"provider": provider, **merged})
        except ValidationError as exc:
            for error in exc.errors():
                at = tuple(error["loc"])
                if path is None or (extra is not None and _holds(extra, at)):
                    line, column = _where(given_marks, (provider, *at))
                    file = str(override)
                else:
                    line, column = _where(base_marks, at)
                    file = str(path)
                field = ".".join(str(part) for part in at)
                problems.append(Problem(file, line, column, f"{provider}.{field}", error["msg"]))
    if problems:
        raise SpecError(problems)
    return tables


def _unknown_providers(
    file: str, given: Mapping[str, Any], marks: Mapping[FieldPath, tuple[int, int]]
) -> list[Problem]:
    """A problem for each key of a price file that names no installed provider (a typo, most likely)."""
    from multicloud.registry import available

    known = [p.name for p in available()]
    return [
        Problem(file, *_where(marks, (name,)), str(name), f"no installed provider is named {name!r} "
                f"(installed: {', '.join(known)})")
        for name in given
        if name not in known
    ]


def _merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """base with extra's fields over it; mappings in both merge field by field."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _where(marks: Mapping[FieldPath, tuple[int, int]], path: FieldPath) -> tuple[int, int]:
    """The line and column of a field, or of its nearest ancestor that is in the file."""
    for end in range(len(path), 0, -1):
        if path[:end] in marks:
            return marks[path[:end]]
    return 1, 1


def _holds(data: Any, path: FieldPath) -> bool:
    """True when data has a value at path (or at the start of it)."""
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True
