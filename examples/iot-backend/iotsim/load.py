"""Load generator for benchmarks: devices publish QoS 1 telemetry flat out or at a paced rate.

The default engine is iotsim.fastpub (bulk-encoded MQTT 3.1.1, a few µs per message); `--engine
paho` uses the simulator's paho devices (MQTT v5, ~0.5 ms of CPU per message).

Reads the devices from $LOAD_DEVICES (JSON list of {"id", "password"}) so that passwords stay off
the command line, and prints one JSON line: sent, acked, failed, first publish and last ack times.
    LOAD_DEVICES='[...]' python3 -m iotsim.load --broker mqtt://broker:1883 --count 20000 [--rate 2000]
    (mqtts://broker:8883 --ca /path/ca.crt: over TLS, verifying the broker's certificate)
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import time

from iotsim import fastpub
from iotsim.device import Device, parse_broker


def main() -> int:
    """Connect the devices, publish, wait for every PUBACK (bounded), print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--count", type=int, required=True, help="messages in total (round-robin)")
    parser.add_argument("--rate", type=float, default=0.0, help="messages per second in total; 0: flat out")
    parser.add_argument("--window", type=int, default=500, help="unacknowledged messages allowed per device")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--engine", choices=("fast", "paho"), default="fast")
    parser.add_argument("--ca", help="CA bundle an mqtts:// broker's certificate must chain to")
    args = parser.parse_args()
    if args.engine == "fast":
        host, port, _transport, tls, _path = parse_broker(args.broker)
        context = ssl.create_default_context(cafile=args.ca) if tls else None
        entries = json.loads(os.environ["LOAD_DEVICES"])
        connections = [fastpub.open_connection(host, port, d["id"], d["password"], context) for d in entries]
        print(json.dumps(fastpub.run(connections, min(args.count, 10_000_000), args.rate, args.window, args.timeout)))
        return 0
    entries = json.loads(os.environ["LOAD_DEVICES"])
    devices = [Device(d["id"], d["password"], args.broker, ca_file=args.ca) for d in entries]
    for device in devices:
        device.client.max_inflight_messages_set(args.window)
        device.connect()
    count = min(args.count, 10_000_000)
    deadline = time.monotonic() + args.timeout
    first = time.time()
    started = time.monotonic()
    for i in range(count):
        device = devices[i % len(devices)]
        if args.rate > 0:
            pause = started + i / args.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        else:
            while device.unacked() >= args.window and time.monotonic() < deadline:
                time.sleep(0.0005)
        device.publish()
        if time.monotonic() > deadline:
            break
    for device in devices:
        device.wait_acked(max(0.0, deadline - time.monotonic()))
    last = time.time()
    result = {
        "sent": sum(d.stats.sent for d in devices),
        "acked": sum(d.stats.acked for d in devices),
        "failed": sum(d.stats.failed + d.unacked() for d in devices),
        "first_publish": first,
        "last_ack": last,
    }
    for device in devices:
        device.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
