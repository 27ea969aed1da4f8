#!/usr/bin/env python3
"""Device simulator for the IoT backend: register devices, publish telemetry, show readings.

Examples:
  export IOT_API_URL=https://127.0.0.1:8000 IOT_API_TOKEN=...  # the registry and an operator token
  export IOT_CA_FILE=.demo/tls/ca.crt                           # the CA its certificates chain to
  python simulate.py run --devices 3 --rate 30 --duration 10 --broker mqtts://127.0.0.1:8883
  python simulate.py run --devices 2 --broker wss://127.0.0.1:8081/mqtt --duration 5
  python simulate.py readings --since 60 --limit 10
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time
import urllib.error
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from iotsim.api import ApiError, RegistryClient
from iotsim.fleet import Fleet, format_report


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="simulate.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--api", default=os.environ.get("IOT_API_URL", "https://127.0.0.1:8000"),
                        help="registry base URL (env IOT_API_URL)")
    parser.add_argument("--ca", default=os.environ.get("IOT_CA_FILE") or None,
                        help="CA bundle the registry's and the broker's TLS certificates must chain to "
                             "(env IOT_CA_FILE; default: the system's CAs)")
    parser.add_argument("--token", default=os.environ.get("IOT_API_TOKEN"),
                        help="operator token (env IOT_API_TOKEN; avoid passing it on the command line)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="register N devices, publish at a rate for a duration, report")
    run.add_argument("--devices", type=int, default=3, help="how many devices (default 3)")
    run.add_argument("--rate", type=float, default=10.0, help="messages per second, all devices together")
    run.add_argument("--duration", type=float, default=10.0, help="seconds to publish (default 10)")
    run.add_argument("--broker", default=os.environ.get("IOT_MQTT_URL", "mqtts://127.0.0.1:8883"),
                     help="mqtt://, mqtts://, ws:// or wss:// URL (env IOT_MQTT_URL)")
    run.add_argument("--qos", type=int, choices=(0, 1), default=1)
    run.add_argument("--prefix", default="sim", help="device id prefix (ids: PREFIX-<random>-N)")
    run.add_argument("--json", action="store_true", help="print the report as JSON")

    readings = sub.add_parser("readings", help="show recent readings through the API")
    readings.add_argument("--device", help="one device id (default: all devices)")
    readings.add_argument("--since", type=float, default=300.0, help="seconds back (default 300)")
    readings.add_argument("--limit", type=int, default=20)

    sub.add_parser("devices", help="list devices with status and last seen")
    decommission = sub.add_parser("decommission", help="decommission a device (revokes its credentials)")
    decommission.add_argument("device")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run one command; exit 1 when messages failed, 2 on usage or API errors."""
    args = parse_args(argv)
    if not args.token:
        print("simulate.py: give an operator token with IOT_API_TOKEN (or --token)", file=sys.stderr)
        return 2
    try:
        api = RegistryClient(args.api, args.token, ca_file=args.ca)
        if args.command == "run":
            fleet = Fleet(api, args.broker, ca_file=args.ca)
            fleet.register(args.devices, prefix=args.prefix)
            fleet.connect()
            report = fleet.run(rate=args.rate, duration=args.duration, qos=args.qos)
            fleet.close()
            print(json.dumps(report.as_dict()) if args.json else format_report(report))
            return 1 if report.failed else 0
        if args.command == "readings":
            rows = api.readings(args.device, since=time.time() - args.since, limit=args.limit)
            for row in rows:
                print(f"{row['ts']}  {row['device_id']:<24} seq={row['seq']:<18} "
                      f"temperature={row['temperature']:<6} humidity={row['humidity']} battery={row['battery']}")
            print(f"{len(rows)} reading(s)")
        elif args.command == "devices":
            for d in api.devices(limit=1000):
                print(f"{d['id']:<28} {d['status']:<15} last seen {d['last_seen'] or '-'}")
        elif args.command == "decommission":
            print(json.dumps(api.decommission(args.device)))
    except ApiError as exc:
        print(f"simulate.py: API error: {exc}", file=sys.stderr)
        return 2
    except (ssl.SSLError, urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        hint = " (give the CA with --ca or IOT_CA_FILE)" if "CERTIFICATE_VERIFY_FAILED" in str(reason) else ""
        print(f"simulate.py: cannot reach the stack: {reason}{hint}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
