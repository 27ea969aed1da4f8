"""Run one apply of a spec (JSON on argv[1]) in its own process, printing each event as a
line, so a test can `kill -9` it at a chosen point. Not a test module."""

from __future__ import annotations

import json
import sys

from multicloud.api import Deployment
from multicloud.contract import Event
from multicloud.spec import spec_from_dict


def main() -> int:
    data = json.loads(sys.argv[1])
    spec = spec_from_dict(data, base_dir="/")

    def show(event: Event) -> None:
        print(f"{event.kind}\t{event.resource}\t{event.message}", flush=True)

    Deployment(spec, "local", on_event=show, health_timeout=90).apply()
    print("finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
