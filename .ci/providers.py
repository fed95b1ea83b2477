#!/usr/bin/env python3
"""The notification providers the CI server talks to: a real SMTP server and two HTTP sinks.

Usage: .ci/venv/bin/python .ci/providers.py SMTP_PORT HTTP_PORT OUT_DIR

  * SMTP on 127.0.0.1:SMTP_PORT is aiosmtpd (a real SMTP server, PyPI aiosmtpd): every message
    Haven sends is appended to OUT_DIR/mail.log (envelope and headers, then the body).
  * HTTP on 127.0.0.1:HTTP_PORT speaks the two provider wire formats Haven's SMS and push channels
    use (CI has no internet, so these are the true external boundary):
      POST /2010-04-01/Accounts/{sid}/Messages.json   Twilio-style form (To, From, Body), basic
           auth; answers 201 with {"sid", "account_sid", "status": "queued"}
      POST /v1/projects/{project}/messages:send        FCM-style JSON {"message": {...}}, bearer
           auth; answers 200 with {"name": "projects/{project}/messages/N"}
    Each request is appended to OUT_DIR/sms.log or OUT_DIR/push.log as one JSON line.

Haven is then started with HAVEN_SMTP_URL=smtp://127.0.0.1:SMTP_PORT and HAVEN_SMS_BASE_URL /
HAVEN_PUSH_BASE_URL=http://127.0.0.1:HTTP_PORT, so the operations that send codes (verification,
password reset, 2FA) and notifications work the way they do in production. The script prints
`providers ready` once both listen and runs until it is killed.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller

TWILIO = re.compile(r"^/2010-04-01/Accounts/([^/]+)/Messages\.json$")
FCM = re.compile(r"^/v1/projects/([^/]+)/messages:send$")
LOCK = threading.Lock()
COUNT = {"sms": 0, "push": 0}


def append(path: Path, line: str) -> None:
    with LOCK, path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")


class Mailbox:
    """aiosmtpd handler: accept every message and log it."""

    def __init__(self, log: Path) -> None:
        self.log = log

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        text = envelope.content.decode("utf-8", "replace")
        append(self.log, f"--- from {envelope.mail_from} to {', '.join(envelope.rcpt_tos)}\n{text}")
        return "250 OK"


def handler(out: Path) -> type[BaseHTTPRequestHandler]:
    class Providers(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: object) -> None:  # keep stderr quiet
            pass

        def reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if m := TWILIO.match(self.path):
                if not self.headers.get("Authorization", "").startswith("Basic "):
                    return self.reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                missing = [k for k in ("To", "From", "Body") if not form.get(k)]
                if missing:
                    return self.reply(400, {"code": 21604, "message": f"missing {missing}", "status": 400})
                with LOCK:
                    COUNT["sms"] += 1
                    n = COUNT["sms"]
                append(out / "sms.log", json.dumps({"at": time.time(), **form}))
                return self.reply(201, {"sid": f"SM{n:032}", "account_sid": m.group(1), "status": "queued"})
            if m := FCM.match(self.path):
                if not self.headers.get("Authorization", "").startswith("Bearer "):
                    return self.reply(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}})
                try:
                    message = json.loads(raw)["message"]
                except (ValueError, KeyError, TypeError):
                    return self.reply(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}})
                with LOCK:
                    COUNT["push"] += 1
                    n = COUNT["push"]
                append(out / "push.log", json.dumps({"at": time.time(), "message": message}))
                return self.reply(200, {"name": f"projects/{m.group(1)}/messages/{n}"})
            self.reply(404, {"error": "not found"})

    return Providers


def main() -> None:
    smtp_port, http_port, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    out.mkdir(parents=True, exist_ok=True)
    smtp = Controller(Mailbox(out / "mail.log"), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", http_port), handler(out))
    print("providers ready", flush=True)
    try:
        http.serve_forever()
    finally:
        smtp.stop()


if __name__ == "__main__":
    main()
