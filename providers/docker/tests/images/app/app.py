"""Test service: a tiny HTTP server that reports who it is and can call an upstream by URL."""

import hashlib
import http.server
import json
import os
import socket
import urllib.request

NAME = os.environ.get("SERVICE_NAME", "app")
PORT = int(os.environ.get("PORT", "8080"))


def report() -> dict:
    secrets = {}
    if os.path.isdir("/run/secrets"):
        for entry in sorted(os.listdir("/run/secrets")):
            with open(os.path.join("/run/secrets", entry), "rb") as handle:
                secrets[entry] = hashlib.sha256(handle.read()).hexdigest()
    data_file = "/data/counter"
    if os.path.isdir("/data"):
        count = 1
        if os.path.exists(data_file):
            with open(data_file) as handle:
                count = int(handle.read()) + 1
        with open(data_file, "w") as handle:
            handle.write(str(count))
    else:
        count = None
    token = os.environ.get("TOKEN", "")
    return {
        "service": NAME,
        "hostname": socket.gethostname(),
        "greeting": os.environ.get("GREETING", ""),
        "token_sha": hashlib.sha256(token.encode()).hexdigest() if token else None,
        "secret_files": secrets,
        "writes": count,
        "uid": os.getuid(),
    }


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            body = b"ok"
        elif self.path == "/upstream":
            with urllib.request.urlopen(os.environ["UPSTREAM"], timeout=5) as response:
                body = json.dumps({"service": NAME, "upstream": json.loads(response.read())}).encode()
        else:
            body = json.dumps(report()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        print(f"{NAME}: {fmt % args}", flush=True)


if __name__ == "__main__":
    print(f"{NAME} listening on {PORT}", flush=True)
    http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
