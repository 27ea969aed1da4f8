"""Broker agent: renders mosquitto's config, follows the auth credential feed and coalesces reloads."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iot_common.env import flag, secret
from mosquitto_log import LogWatch

# Service accounts: env var holding the password -> (username, ACL lines). Device ids cannot
# start with "_", so these names never collide with a device's.
SERVICE_ACCOUNTS: dict[str, tuple[str, tuple[str, ...]]] = {
    # services/ingestion/#: the replicas' wills, so that survivors resume a dead replica's session
    "INGESTION_MQTT_PASSWORD": (
        "_ingestion", ("topic read devices/+/telemetry", "topic readwrite services/ingestion/#")
    ),
    "REGISTRY_MQTT_PASSWORD": ("_registry", ("topic write devices/+/commands",)),
}
DEVICE_ACL = (
    "# every device: publish under its own prefix, subscribe to its own command topic",
    "pattern write devices/%u/#",
    "pattern read devices/%u/commands",
)
PBKDF2_ITERATIONS = 101
# Mosquitto 2.0.11 restores plain subscriptions from its persistence file but not shared ones: after a
# restart, until an ingestion replica subscribes again, a device's QoS 1 publish would be acknowledged
# (reason 0x10, no matching subscribers) and dropped. So devices are admitted only once this filter
# has a subscriber again ("" admits them at once).
GUARD_PLUGIN = "/usr/lib/mosquitto/iot_guard.so"
DEFAULT_HOLD = "$share/ingestion/devices/+/telemetry"  # mosquitto_passwd's default; passwords are random 192-bit tokens


def log(message: str) -> None:
    """Print one line to stdout, prefixed so it stands apart from mosquitto's lines."""
    print(f"broker-agent: {message}", flush=True)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Return mosquitto's `$7$` PBKDF2-SHA512 hash of a password."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@dataclass(frozen=True)
class Settings:
    """What the agent reads from its environment."""

    state_dir: Path
    mqtt_port: int
    ws_port: int
    tls_port: int
    wss_port: int
    auth_url: str
    feed_token: str | None
    reload_interval: float
    max_queued: int
    hold_until_subscribed: str = ""
    mqtts_tls: bool = True
    wss_tls: bool = True
    """MQTTS_TLS / WSS_TLS false: that listener is served plain (the platform ends TLS in front of it)."""
    guard_plugin: str = GUARD_PLUGIN
    services: dict[str, str] = field(default_factory=dict)
    # the certificate and key mosquitto reads: in the container's own temporary folder, never in the
    # persistent state volume (a key must not outlive the container that was given it)
    tls_dir: Path = Path(tempfile.gettempdir()) / "broker-tls"

    @staticmethod
    def from_env() -> Settings:
        """Build settings from environment variables (ports 0 disable a listener)."""
        services = {}
        for var, (user, _acl) in SERVICE_ACCOUNTS.items():
            password = secret(var)
            if password:
                services[user] = password
        return Settings(
            state_dir=Path(os.environ.get("BROKER_STATE_DIR", "/var/lib/mosquitto")),
            mqtt_port=int(os.environ.get("MQTT_PORT") or 0),
            ws_port=int(os.environ.get("WS_PORT") or 0),
            tls_port=int(os.environ.get("MQTTS_PORT") or 0),
            wss_port=int(os.environ.get("WSS_PORT") or 0),
            auth_url=os.environ.get("AUTH_URL", "").rstrip("/"),
            feed_token=secret("BROKER_FEED_TOKEN"),
            reload_interval=float(os.environ.get("RELOAD_INTERVAL_MS", "250")) / 1000,
            max_queued=int(os.environ.get("MAX_QUEUED_MESSAGES", "1000000")),
            hold_until_subscribed=os.environ.get("HOLD_DEVICES_UNTIL_SUBSCRIBED", DEFAULT_HOLD),
            mqtts_tls=flag("MQTTS_TLS", True),
            wss_tls=flag("WSS_TLS", True),
            services=services,
        )


def render_config(s: Settings) -> str:
    """Return mosquitto.conf for these settings."""
    lines = [
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {s.state_dir / 'passwd'}",
        f"acl_file {s.state_dir / 'acl'}",
        # client ids bound to usernames, devices' SUBSCRIBEs kept to their own topics (iot_guard.c)
        f"plugin {s.guard_plugin}",
        "persistence true",
        f"persistence_location {s.state_dir}/",
        "autosave_interval 30",
        "max_inflight_messages 0",
        f"max_queued_messages {s.max_queued}",
        "max_queued_bytes 0",
        "set_tcp_nodelay true",
        "log_dest stdout",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        *(["log_type subscribe"] if s.hold_until_subscribed else []),
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    if s.mqtt_port:
        lines += [f"listener {s.mqtt_port}", "protocol mqtt"]
    if s.ws_port:
        lines += [f"listener {s.ws_port}", "protocol websockets"]
    for port, protocol, tls in ((s.tls_port, "mqtt", s.mqtts_tls), (s.wss_port, "websockets", s.wss_tls)):
        if port:
            lines += [f"listener {port}", f"protocol {protocol}"]
            if tls:
                lines += [f"certfile {s.tls_dir / 'tls.crt'}", f"keyfile {s.tls_dir / 'tls.key'}",
                          "tls_version tlsv1.2"]
    if not (s.mqtt_port or s.tls_port):
        # mosquitto 2.0.11 counts only TCP listeners as started and exits with WebSockets ones alone
        # ("Unable to start any listening sockets"): one on the loopback keeps it up, unreachable from outside
        loopback = next(p for p in (1883, 1884, 1885) if p not in (s.ws_port, s.wss_port))
        lines += [f"listener {loopback} 127.0.0.1", "protocol mqtt"]
    return "\n".join(lines) + "\n"


def render_acl(s: Settings) -> str:
    """Return the ACL file: per-service rules, then the per-device pattern."""
    lines: list[str] = []
    for user, acl in SERVICE_ACCOUNTS.values():
        if user in s.services:
            lines += [f"user {user}", *acl, ""]
    return "\n".join([*lines, *DEVICE_ACL]) + "\n"


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace a file in one rename so mosquitto never reads half of it."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    tmp.replace(path)


class PasswordFile:
    """Device and service hashes; rewrites the password file and SIGHUPs at most once per interval."""

    def __init__(self, path: Path, services: dict[str, str], interval: float) -> None:
        self.path = path
        self.version = 0
        self.on_reload: Callable[[int], None] | None = None
        self.watch = LogWatch()
        self.admitted = threading.Event()  # device entries are written only once set
        self.services = {user: hash_password(pw) for user, pw in services.items()}
        self.devices: dict[str, str] = {}
        self.interval = interval
        self.pid: int | None = None
        self._dirty = threading.Event()
        self._lock = threading.Lock()
        self.reloads = 0

    def load_existing(self) -> None:
        """Keep the devices of a previous run (a restart while auth is down still admits them)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError:
            return
        for line in text.splitlines():
            user, _, digest = line.partition(":")
            if user and digest and not user.startswith("_"):
                self.devices[user] = digest

    def apply(self, version: int, reset: bool, upsert: dict[str, str], delete: list[str]) -> None:
        """Apply one feed response; a reset replaces every device."""
        with self._lock:
            self.version = version
            if reset:
                self.devices = {}
            self.devices.update({u: h for u, h in upsert.items() if not u.startswith("_")})
            for user in delete:
                self.devices.pop(user, None)
        self._dirty.set()

    def write(self) -> tuple[int, int]:
        """Write the file now; return (device entries, credential version) it holds."""
        with self._lock:
            rows = [f"{u}:{h}" for u, h in self.services.items()]
            if self.admitted.is_set():
                rows += [f"{u}:{h}" for u, h in self.devices.items()]
            count, version = len(self.devices), self.version
        write_atomic(self.path, "\n".join(rows) + "\n")
        return count, version

    def admit_when_subscribed(self, filter_: str) -> None:
        """Hold device entries back until `filter_` has a subscriber, then write them (runs in a thread)."""
        if filter_:
            log(f"devices held back until a subscriber of {filter_} is connected")
            while not self.watch.subscribed.wait(30):
                log(f"still no subscriber of {filter_}: devices held back ({len(self.devices)} known)")
            log(f"{filter_} has a subscriber: admitting devices")
        self.admitted.set()
        self._dirty.set()

    def run_reloader(self) -> None:
        """Coalesce changes: write and SIGHUP at most once per interval, forever."""
        last = 0.0
        while True:
            self._dirty.wait()
            pause = last + self.interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self._dirty.clear()
            count, version = self.write()
            seen = self.watch.reloads
            # SIGHUP's default action is to terminate: mosquitto must have installed its handler
            # (it logs "running" after that) or this reload would kill a broker that is starting
            if self.pid is not None and self.watch.running.wait(120):
                os.kill(self.pid, signal.SIGHUP)
                self.reloads += 1
            last = time.monotonic()
            # mosquitto logs "Reloading config." and reloads in the same turn of its single-threaded
            # loop, so a CONNECT it reads after that line is checked against the new file
            if not self.watch.wait_reload_beyond(seen, 10.0):
                log("mosquitto did not log its reload within 10 s; reporting the version anyway")
            if self.on_reload is not None and self.admitted.is_set():
                self.on_reload(version)
            if self.reloads % 50 == 1:
                log(f"reloaded credentials ({count} devices, {self.reloads} reloads)")


def follow_feed(s: Settings, passwords: PasswordFile) -> None:
    """Long-poll the auth service's credential feed forever, applying each change set."""
    if not s.auth_url or not s.feed_token:
        log("AUTH_URL or BROKER_FEED_TOKEN unset: devices cannot connect, only service accounts")
        return
    version, epoch, backoff = 0, "", 0.5
    while True:
        query = urllib.parse.urlencode({"after": version, "epoch": epoch, "wait": 25})
        try:
            body = call_auth(s, f"/v1/broker/credentials?{query}", 40.0)
        except (OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            log(f"credential feed unavailable ({reason}); retrying in {backoff:.1f} s")
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
            continue
        backoff = 0.5
        reset = bool(body.get("reset"))
        upsert, delete = body.get("upsert") or {}, body.get("delete") or []
        if reset or upsert or delete:
            passwords.apply(int(body["version"]), reset, upsert, delete)
        if reset:
            log(f"credential snapshot: {len(upsert)} devices at version {body['version']}")
        version, epoch = int(body["version"]), str(body.get("epoch", ""))


def call_auth(s: Settings, path: str, timeout: float, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Call the auth service with the feed token and return its JSON answer."""
    if not s.auth_url.startswith(("http://", "https://")):
        raise ValueError(f"AUTH_URL must be an http(s) URL, not {s.auth_url!r}")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        f"{s.auth_url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {s.feed_token}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        answer: dict[str, Any] = json.load(response)
    return answer


def report_applied(s: Settings, version: int) -> None:
    """Tell auth which credential version mosquitto has loaded (best effort)."""
    try:
        call_auth(s, "/v1/broker/applied", 5.0, {"version": version})
    except (OSError, ValueError) as exc:
        log(f"could not report applied version {version}: {exc}")


def prepare(s: Settings) -> Path:
    """Write config, ACL, TLS material and the initial password file; return the config path."""
    s.state_dir.mkdir(parents=True, exist_ok=True)
    conf = s.state_dir / "mosquitto.conf"
    if (s.tls_port and s.mqtts_tls) or (s.wss_port and s.wss_tls):
        cert, key = secret("MQTT_TLS_CERT"), secret("MQTT_TLS_KEY")
        if not cert or not key:
            sys.exit("broker-agent: MQTTS_PORT and WSS_PORT need MQTT_TLS_CERT and MQTT_TLS_KEY (PEM, or *_FILE) "
                     "unless MQTTS_TLS / WSS_TLS is false")
        s.tls_dir.mkdir(mode=0o700, exist_ok=True)
        for stale in ("tls.crt", "tls.key"):  # where earlier versions kept them
            (s.state_dir / stale).unlink(missing_ok=True)
        write_atomic(s.tls_dir / "tls.crt", cert + "\n")
        write_atomic(s.tls_dir / "tls.key", key + "\n")
    write_atomic(conf, render_config(s))
    write_atomic(s.state_dir / "acl", render_acl(s))
    return conf


def main() -> int:
    """Start mosquitto under the agent and keep its credentials in step with auth."""
    s = Settings.from_env()
    if not (s.mqtt_port or s.ws_port or s.tls_port or s.wss_port):
        sys.exit("broker-agent: set at least one of MQTT_PORT, WS_PORT, MQTTS_PORT, WSS_PORT")
    conf = prepare(s)
    passwords = PasswordFile(s.state_dir / "passwd", s.services, s.reload_interval)
    passwords.watch.filter = s.hold_until_subscribed
    passwords.load_existing()
    passwords.write()  # service accounts only, until admit_when_subscribed
    log(f"service accounts: {', '.join(sorted(s.services)) or 'none'}; listeners: "
        f"mqtt={s.mqtt_port or '-'} ws={s.ws_port or '-'} mqtts={s.tls_port or '-'} wss={s.wss_port or '-'}")
    # stdbuf: line-buffer mosquitto's stdout so its log reaches `docker logs` at once
    child = subprocess.Popen(["stdbuf", "-oL", "mosquitto", "-c", str(conf)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, errors="replace")
    passwords.pid = child.pid
    assert child.stdout is not None
    threading.Thread(target=passwords.watch.pump, args=(child.stdout,), name="log", daemon=True).start()
    if s.auth_url and s.feed_token:
        passwords.on_reload = lambda version: report_applied(s, version)

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    threading.Thread(target=passwords.run_reloader, name="reloader", daemon=True).start()
    threading.Thread(target=passwords.admit_when_subscribed, args=(s.hold_until_subscribed,), name="admit",
                     daemon=True).start()
    threading.Thread(target=follow_feed, args=(s, passwords), name="feed", daemon=True).start()
    return child.wait()


if __name__ == "__main__":
    sys.exit(main())
