"""What Cloud Run fills in when a request leaves it out, as Cloud Run returns it."""

from __future__ import annotations

from typing import Any


def fill_defaults(service: dict[str, Any], project_number: str) -> None:
    """Fill in what Cloud Run defaults, as it returns it: service account, timeout, concurrency,
    max instances, the ingress container's port 8080 and TCP startup probe, probe timings, limits."""
    template = service.setdefault("template", {})
    template.setdefault("serviceAccount", f"{project_number}-compute@developer.gserviceaccount.com")
    template.setdefault("timeout", "300s")
    template.setdefault("maxInstanceRequestConcurrency", 80)
    template.setdefault("scaling", {}).setdefault("maxInstanceCount", 100)
    containers = template.get("containers") or []
    for index, container in enumerate(containers):
        limits = container.setdefault("resources", {}).setdefault("limits", {})
        limits.setdefault("cpu", "1000m")
        limits.setdefault("memory", "512Mi")
        ingress = bool(container.get("ports")) or (index == 0 and not any(c.get("ports") for c in containers))
        if not ingress:
            continue
        if not container.get("ports"):
            container["ports"] = [{"name": "http1", "containerPort": 8080}]
        port = container["ports"][0].setdefault("containerPort", 8080)
        container["ports"][0].setdefault("name", "http1")
        container.setdefault(
            "startupProbe", {"timeoutSeconds": 240, "periodSeconds": 240, "failureThreshold": 1, "tcpSocket": {}}
        )
        for kind in ("startupProbe", "livenessProbe"):
            probe = container.get(kind)
            if probe is None:
                continue
            probe.setdefault("periodSeconds", 10)
            probe.setdefault("timeoutSeconds", 1)
            probe.setdefault("failureThreshold", 3)
            for action in ("httpGet", "tcpSocket", "grpc"):
                if action in probe:
                    probe[action].setdefault("port", port)
