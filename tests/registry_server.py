#!/usr/bin/python3
"""A tiny Confluent-Schema-Registry-compatible HTTP server for declstream's tests.

No real Schema Registry (a Java service) is installable on this machine, so
tests/test_registry.c and tests/test_hostile.c start this instead. It speaks
the one call declstream makes, GET /schemas/ids/<id>, answering as the real
registry does: 200 {"schema": "<schema JSON as a string>"}, or 404
{"error_code": 40403, "message": "Schema <id> not found"}. Python 3 standard
library only.

    registry_server.py SPEC.json

SPEC is a JSON object:
    {
      "auth": "user:password",          optional: require HTTP basic auth (401 otherwise)
      "ids": {
        "100": {"schema_file": "/path/x.avsc"},        200 with that schema
        "101": {"schema": "{...}"},                     200 with this schema text
        "102": {"status": [500, 200], ...},             per request: 500 first, then 200
                                                        (the last entry repeats)
        "103": {"delay_ms": [3000, 0], ...},            per request: sleep before answering
        "104": {"raw": "not json"},                     200 with this body as is
        "105": {"schemaType": "PROTOBUF", ...}          adds schemaType to the answer
      }
    }
Any id not listed answers 404. GET /__stats answers {"<path>": count, ...},
the number of requests seen per path (the /__stats requests excepted).

It listens on 127.0.0.1 on a free port and prints "port=<n>" on stdout once
it is ready; it stops on SIGTERM.
"""
import base64
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

spec = json.load(open(sys.argv[1]))
lock = threading.Lock()
counts = {}


def pick(value, n):
    """value may be a scalar or a per-request list (last entry repeats)."""
    if isinstance(value, list):
        return value[min(n, len(value) - 1)] if value else None
    return value


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def reply(self, status, body, ctype="application/vnd.schemaregistry.v1+json"):
        data = body.encode() if isinstance(body, str) else body
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to do

    def do_GET(self):
        path = self.path
        if path == "/__stats":
            with lock:
                body = json.dumps(counts)
            return self.reply(200, body, "application/json")
        with lock:
            n = counts.get(path, 0)
            counts[path] = n + 1
        auth = spec.get("auth")
        if auth:
            want = "Basic " + base64.b64encode(auth.encode()).decode()
            if self.headers.get("Authorization") != want:
                return self.reply(401, json.dumps({"error_code": 401, "message": "Unauthorized"}))
        prefix = "/schemas/ids/"
        if not path.startswith(prefix):
            return self.reply(404, json.dumps({"error_code": 404, "message": "HTTP 404 Not Found"}))
        sid = path[len(prefix):]
        entry = spec.get("ids", {}).get(sid)
        if entry is None:
            return self.reply(404, json.dumps({"error_code": 40403, "message": "Schema %s not found" % sid}))
        delay = pick(entry.get("delay_ms", 0), n) or 0
        if delay:
            time.sleep(delay / 1000.0)
        status = pick(entry.get("status", 200), n) or 200
        if status != 200:
            return self.reply(status, json.dumps({"error_code": status * 100, "message": "injected failure"}))
        if "raw" in entry:
            return self.reply(200, entry["raw"])
        if "schema_file" in entry:
            text = open(entry["schema_file"]).read()
        else:
            text = entry.get("schema", "")
        answer = {"schema": text}
        if "schemaType" in entry:
            answer["schemaType"] = entry["schemaType"]
        return self.reply(200, json.dumps(answer))


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("port=%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
