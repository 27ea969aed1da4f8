"""Fargate's allowed task CPU/memory pairs, and the mapping of a spec's request onto them."""

from __future__ import annotations

from multicloud.errors import UserError

MIB = 1024 * 1024

FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}
"""CPU units (1024 = 1 vCPU) to the memory sizes (MiB) Fargate accepts with them."""


def allowed_pairs() -> str:
    """A one-line summary of every allowed pair, for error messages."""
    rows = []
    for cpu, memories in FARGATE_MEMORY.items():
        low, high = memories[0], memories[-1]
        step = memories[1] - memories[0]
        if len(memories) <= 3:
            mem = ", ".join(_gib(m) for m in memories)
        else:
            mem = f"{_gib(low)}-{_gib(high)} in {_gib(step)} steps"
        rows.append(f"cpu {cpu / 1024:g}: {mem}")
    return "; ".join(rows)


def is_valid(cpu: int, memory: int) -> bool:
    """True when (cpu units, memory MiB) is a pair Fargate accepts."""
    return memory in FARGATE_MEMORY.get(cpu, ())


def fargate_size(service: str, cpu: float, memory_bytes: int) -> tuple[int, int]:
    """Map a request (cores, bytes) to the smallest allowed (cpu units, memory MiB) that holds
    it: cpu rounds up to a Fargate size, memory up to that size's next step (at least its
    minimum). Raises UserError naming the allowed pairs when no pair with that cpu fits."""
    units = max(1, round(cpu * 1024))
    memory = -(-memory_bytes // MIB)
    sizes = [c for c in FARGATE_MEMORY if c >= units]
    where = f"services.{service}.resources"
    if not sizes:
        raise UserError(
            f"{where}.cpu: {cpu:g} vCPU is more than Fargate's largest task (16 vCPU)",
            hint=f"Fargate's cpu/memory pairs are {allowed_pairs()}",
        )
    chosen = sizes[0]
    fitting = [m for m in FARGATE_MEMORY[chosen] if m >= memory]
    if not fitting:
        bigger = [c for c in sizes if FARGATE_MEMORY[c][-1] >= memory]
        instead = (
            f"raise resources.cpu to {bigger[0] / 1024:g} or lower the memory"
            if bigger
            else "lower the memory (Fargate's largest task has 120Gi)"
        )
        raise UserError(
            f"{where}: Fargate has no task with cpu {chosen / 1024:g} and {_gib(memory)} memory "
            f"(cpu {chosen / 1024:g} allows {_gib(FARGATE_MEMORY[chosen][0])}-{_gib(FARGATE_MEMORY[chosen][-1])}); "
            f"{instead}",
            hint=f"Fargate's cpu/memory pairs are {allowed_pairs()}",
        )
    return chosen, fitting[0]


def billed_size(service: str, cpu: float, memory_bytes: int) -> tuple[float, float]:
    """The vCPU and GiB Fargate bills for a request (its task size, see fargate_size); UserError as there.
    Named by prices.yaml for `multicloud estimate`."""
    units, mib = fargate_size(service, cpu, memory_bytes)
    return units / 1024, mib / 1024


def _gib(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"
