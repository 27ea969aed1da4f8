"""Run one apply against the emulator and SIGKILL this process at the Nth mutating call.

Usage: python aws_crash_driver.py ENDPOINT APP KILL_AT   (a test helper, not a test)
"""

from __future__ import annotations

import os
import signal
import sys

from multicloud_aws.emulator import client_factory
from multicloud_aws.provider import AwsEcsProvider

from multicloud.api import Deployment
from multicloud.retry import RetryPolicy
from multicloud.testing.contract import SECRET_VALUE, contract_spec

READS = ("Describe", "List", "Get", "Discover")


def main() -> None:
    endpoint, app, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    mutations = [0]

    def hook(event_name: str, **_: object) -> None:
        if not event_name.rsplit(".", 1)[-1].startswith(READS):
            mutations[0] += 1
            if mutations[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

    provider = AwsEcsProvider({"region": "us-east-1"}, client_factory=client_factory(endpoint, hook=hook))
    spec = contract_spec(app, {"image": "registry.example.com/contract/app:1"}, with_extra=True)
    Deployment(spec, "test", provider=provider, environ={"CONTRACT_TOKEN": SECRET_VALUE},
               retry=RetryPolicy(attempts=5, base_delay=0.05), health_timeout=30).apply()


if __name__ == "__main__":
    main()
