"""A real SMTP server for the notification tests (aiosmtpd): listens on HOST:PORT and writes each
message it accepts to OUT/NNNN.json (envelope, headers, and every MIME part's type and text).

usage: python smtp_sink.py HOST PORT OUT     (prints "ready" once listening; ends when stdin closes)
"""
import email
import json
import os
import sys
from email import policy

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, out):
        self.out = out
        self.n = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # Addresses starting with "bounce" do not exist: a permanent refusal (550).
        if address.startswith("bounce"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        parts = []
        for part in msg.walk():
            if part.get_content_maintype() == "multipart":
                continue
            parts.append({"type": part.get_content_type(), "content": part.get_content()})
        record = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "subject": str(msg["subject"]),
            "messageId": str(msg["message-id"]),
            "contentType": msg.get_content_type(),
            "parts": parts,
        }
        tmp = os.path.join(self.out, f".{self.n}.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.out, f"{self.n:04d}.json"))
        return "250 OK"


def main():
    host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    controller = Controller(Store(out), hostname=host, port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
