"""Cloud Run's own rules (names, CPU, memory, concurrency, timeouts), shared by plan and emulator."""

from __future__ import annotations

import re

from multicloud.spec.units import format_memory, parse_memory

SERVICE_ID = re.compile(r"^[a-z]([a-z0-9-]{0,47}[a-z0-9])?$")
LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
LABEL_VALUE = re.compile(r"^[a-z0-9_-]{0,63}$")
WHOLE_CPUS = (1, 2, 4, 6, 8)
MIN_MEMORY = 128 * 1024**2
MAX_MEMORY = 32 * 1024**3
MAX_CONCURRENCY = 1000
MAX_TIMEOUT = 3600
MAX_ENV = 1000  # environment variables per container
DNS_LABEL = 63  # SERVICE-PROJECT_NUMBER longer than this has no deterministic URL
DEFAULT_MAX_INSTANCES = 100
GEN2_MIN_MEMORY = 512 * 1024**2
STARTUP_WINDOW = 240  # startup probes: period, initial delay and period x failures, in seconds
LIVENESS_WINDOW = 3600  # liveness probes: period and initial delay
SYSTEM_ANNOTATIONS = (
    "run.googleapis.com/", "cloud.googleapis.com/", "serving.knative.dev/", "autoscaling.knative.dev/"
)
RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")
GI = 1024**3
MI = 1024**2
# cpu -> (minimum, maximum) memory, from Cloud Run's "vCPU and memory" table
_MEMORY_FOR_CPU = {
    1: (MIN_MEMORY, 4 * GI),
    2: (MIN_MEMORY, 8 * GI),
    4: (2 * GI, 16 * GI),
    6: (4 * GI, 24 * GI),
    8: (4 * GI, 32 * GI),
}


def service_id_problem(service_id: str) -> str | None:
    """Return why a Cloud Run service ID is invalid, or None when it is valid."""
    if SERVICE_ID.match(service_id):
        return None
    return (
        f"{service_id!r} is not a valid Cloud Run service name: it must start with a letter, use only "
        "lowercase letters, digits and hyphens, not end with a hyphen, and be fewer than 50 characters"
    )


def format_cpu(cpu: float) -> str:
    """Write a CPU count as Cloud Run's limits map wants it ("1", "250m")."""
    return str(int(cpu)) if float(cpu).is_integer() else f"{round(cpu * 1000)}m"


def parse_cpu(text: str) -> float:
    """Read a Kubernetes-style CPU quantity ("1", "0.5", "500m"); raise ValueError."""
    text = text.strip()
    if text.endswith("m"):
        return float(text[:-1]) / 1000
    return float(text)


def resource_problems(cpu: float, memory: int, *, concurrency: int, cpu_idle: bool, gen1: bool) -> list[str]:
    """Return every way a CPU/memory/concurrency combination breaks Cloud Run's limits."""
    found: list[str] = []
    if cpu < 0.08:
        found.append(f"cpu {cpu} is below Cloud Run's minimum of 0.08")
    elif cpu > 8:
        found.append(f"cpu {cpu} exceeds Cloud Run's maximum of 8")
    elif cpu > 1 and cpu not in WHOLE_CPUS:
        found.append(f"cpu {cpu}: above 1, Cloud Run takes only 1, 2, 4, 6 or 8")
    if memory < MIN_MEMORY or memory > MAX_MEMORY:
        found.append(f"memory {format_memory(memory)} is outside Cloud Run's range of 128Mi to 32Gi")
    elif cpu < 1:
        if memory > GI:
            found.append(f"memory {format_memory(memory)} needs at least 1 cpu (cpu is {cpu})")
        elif memory > 512 * MI and cpu < 0.5:
            found.append(f"memory {format_memory(memory)} needs at least 0.5 cpu (cpu is {cpu})")
    elif cpu in WHOLE_CPUS:
        low, high = _MEMORY_FOR_CPU[int(cpu)]
        if not low <= memory <= high:
            found.append(
                f"memory {format_memory(memory)} is outside {format_memory(low)}..{format_memory(high)}, "
                f"the range Cloud Run allows with {int(cpu)} cpu"
            )
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        found.append(f"concurrency {concurrency} is outside 1..{MAX_CONCURRENCY}")
    if cpu < 1 and (concurrency != 1 or not cpu_idle or not gen1):
        found.append(
            f"cpu {cpu} is below 1, which Cloud Run allows only with concurrency 1, CPU allocated during "
            "requests only and the first-generation execution environment"
        )
    return found


def execution_problem(memory: int, *, gen2: bool) -> str | None:
    """Why the second-generation environment cannot run with this memory, or None."""
    if gen2 and memory < GEN2_MIN_MEMORY:
        return f"memory {format_memory(memory)} is below 512Mi, the second-generation execution environment's minimum"
    return None


def reserved_env_problem(names: list[str]) -> str | None:
    """Cloud Run's refusal of env names it sets itself, or None."""
    reserved = [n for n in names if n in RESERVED_ENV]
    if not reserved:
        return None
    return (
        f"The following reserved env names were provided: {', '.join(reserved)}. "
        "These values are automatically set by the system."
    )


def probe_problems(probe: dict[str, int], *, startup: bool) -> list[str]:
    """Every bound a probe's timings (camelCase or snake_case keys) break, as Cloud Run states them."""
    def get(name: str, camel: str, default: int) -> int:
        return int(probe.get(name, probe.get(camel, default)))

    high = STARTUP_WINDOW if startup else LIVENESS_WINDOW
    period = get("period_seconds", "periodSeconds", 10)
    delay = get("initial_delay_seconds", "initialDelaySeconds", 0)
    timeout = get("timeout_seconds", "timeoutSeconds", 1)
    failures = get("failure_threshold", "failureThreshold", 3)
    found = []
    if not 1 <= period <= high:
        found.append(f"periodSeconds {period} is outside 1..{high}")
    if not 0 <= delay <= high:
        found.append(f"initialDelaySeconds {delay} is outside 0..{high}")
    if timeout > period:
        found.append(f"timeoutSeconds {timeout} exceeds periodSeconds {period}")
    if startup and period * failures > STARTUP_WINDOW:
        found.append(f"periodSeconds x failureThreshold ({period} x {failures}) exceeds {STARTUP_WINDOW} seconds")
    return found


def memory_of(text: str) -> int:
    """Read a memory limit ("512Mi", "1Gi", "1G"); raise ValueError."""
    return parse_memory(text)


def env_count_problem(count: int) -> str | None:
    """Cloud Run's refusal of more environment variables than a container may have, or None."""
    if count <= MAX_ENV:
        return None
    return f"{count} environment variables; Cloud Run sets at most {MAX_ENV} per container"
