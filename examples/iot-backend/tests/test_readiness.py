"""Ingestion's /healthz says `mqtt_subscribed` only once the broker has granted every subscription."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest
from helpers import eventually
from stack import DockerStack, docker, free_port

pytestmark = pytest.mark.docker

# A mosquitto whose dynamic-security plugin lets `_ingestion` (the stack's password) subscribe to the share group
# only: the will subscription gets SUBACK 0x87 until the role `wills` is given to it (which kicks the client).
REFUSING_BROKER = """
set -e
d=$(mktemp -d)
mosquitto_ctrl dynsec init "$d/dynsec.json" admin "$ADMIN_PW" >/dev/null
printf 'per_listener_settings false\\nplugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so\\n\
plugin_opt_config_file %s/dynsec.json\\nlog_dest stdout\\nlog_type all\\nlistener 1883\\n' "$d" > "$d/mosquitto.conf"
mosquitto -c "$d/mosquitto.conf" &
ctrl() { mosquitto_ctrl -u admin -P "$ADMIN_PW" dynsec "$@" 2>/dev/null; }
until ctrl listRoles >/dev/null; do sleep 0.1; done
ctrl createClient _ingestion -p "$INGESTION_MQTT_PASSWORD" >/dev/null
ctrl createRole group && ctrl addRoleACL group subscribePattern '$share/ingestion/devices/+/telemetry' allow
ctrl createRole wills && ctrl addRoleACL wills subscribeLiteral 'services/ingestion/ingestion/gone/+' allow
ctrl addClientRole _ingestion group
echo "refusing broker ready"
wait
"""


def logs(container: str) -> str:
    """A container's stdout and stderr so far."""
    result = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=False, timeout=30)
    return result.stdout + result.stderr


def test_mqtt_subscribed_waits_for_every_suback_and_a_refused_one_keeps_it_false(stack: DockerStack) -> None:
    broker, replica = f"{stack.prefix}-refusing-broker", 8
    env = {**os.environ, "ADMIN_PW": secrets.token_urlsafe(12),
           "INGESTION_MQTT_PASSWORD": stack.secrets["ingestion_mqtt_password"]}
    docker("run", "-d", "--name", broker, "--network", stack.network, "--label", f"iot-backend-test={stack.prefix}",
           "-e", "ADMIN_PW", "-e", "INGESTION_MQTT_PASSWORD", "--entrypoint", "sh", stack.images["broker"],
           "-c", REFUSING_BROKER, env=env)
    stack.containers.append(broker)
    try:
        assert eventually(lambda: "refusing broker ready" in logs(broker), timeout=30), logs(broker)
        stack.ports[f"ingestion-{replica}"] = port = free_port()
        ingestion = {**stack.env("ingestion"), "MQTT_URL": f"mqtt://{broker}:1883"}
        stack._run("ingestion", ingestion, {port: stack.services["ingestion"].ports[0].port}, replica=replica)
        name = stack.name("ingestion", replica)
        assert eventually(lambda: "subscription to services/ingestion/ingestion/gone/+ refused" in logs(name),
                          timeout=60), logs(name)
        health = stack.health(replica)
        assert health["mqtt_connected"] is True and health["mqtt_subscribed"] is False, health
        assert health["status"] == "ok", "the share group's subscription is granted: the replica consumes"

        docker("exec", "-e", "ADMIN_PW", broker, "sh", "-c",
               'mosquitto_ctrl -u admin -P "$ADMIN_PW" dynsec addClientRole _ingestion wills', env=env)
        assert eventually(lambda: stack.subscribed(replica), timeout=30), logs(name)
        assert logs(name).count("subscription to services/ingestion/ingestion/gone/+ refused") == 1
    finally:
        docker("rm", "-f", stack.name("ingestion", replica), broker, check=False)
