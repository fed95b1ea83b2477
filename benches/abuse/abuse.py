#!/usr/bin/env python3
"""Abuse figures for Haven's connection, load and overload limits (issue 10, items 5-8).

Starts the `haven` binary (default target/debug/haven; --bin to choose) once per phase with the
settings the phase needs, on a private cluster in a temporary data dir (or DATABASE_URL when set),
and prints one line of figures per phase. Python stdlib only; every phase is bounded to a few
seconds.

  connections  N half-sent requests: how many the server still holds after the header-read
               timeout, and what a new client gets while they are held
  logins       listListings p50/p95 alone, then under 64 concurrent logins (login statuses)
  rate         300 back-to-back MCP calls from one API key: how many answer RateLimited
  overload     N concurrent listListings on a 5-connection pool: 500s vs 503s, and the ERROR
               lines the server logged

Usage: python3 benches/abuse/abuse.py [--bin PATH] [--only PHASE] [--half-sent N] [--overload N]
"""

import argparse
import asyncio
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One haven process; stderr is collected so ERROR lines can be counted."""

    def __init__(self, binary, data_dir, env):
        self.port = free_port()
        full = dict(os.environ)
        full.update(
            {
                "HAVEN_BIND": f"127.0.0.1:{self.port}",
                "HAVEN_DATA_DIR": data_dir,
                "RUST_LOG": "haven=info,warn",
            }
        )
        full.update({k: str(v) for k, v in env.items()})
        self.proc = subprocess.Popen(
            [binary, "serve"],
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr = []
        self.admin_key = None
        threading.Thread(target=self._drain_err, daemon=True).start()
        threading.Thread(target=self._drain_out, daemon=True).start()
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit("haven exited early:\n" + "".join(self.stderr[-20:]))
            try:
                with urllib.request.urlopen(f"{self.base}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except Exception:
                time.sleep(0.2)
        sys.exit("haven did not become ready in 90 s")

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def _drain_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def _drain_out(self):
        for line in self.proc.stdout:
            if line.startswith("HAVEN_ADMIN_API_KEY="):
                self.admin_key = line.strip().split("=", 1)[1]

    def errors_logged(self):
        return sum(1 for l in self.stderr if re.search(r"\bERROR\b", l))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def request(port, method, path, body=None, token=None, timeout=10.0):
    """One HTTP/1.1 request on its own connection; (status, headers, body, seconds)."""
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout
        )
    except Exception:
        return (0, {}, b"", time.perf_counter() - started)
    payload = b"" if body is None else json.dumps(body).encode()
    head = [
        f"{method} {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Connection: close",
        "Accept: application/json, text/event-stream",
        f"Content-Length: {len(payload)}",
    ]
    if body is not None:
        head.append("Content-Type: application/json")
    if token:
        head.append(f"Authorization: Bearer {token}")
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    except Exception:
        return (0, {}, b"", time.perf_counter() - started)
    finally:
        writer.close()
    took = time.perf_counter() - started
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode(errors="replace").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return (0, {}, raw, took)
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return (status, headers, rest, took)


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


def counts(statuses):
    out = {}
    for s in statuses:
        out[s] = out.get(s, 0) + 1
    return dict(sorted(out.items()))


async def phase_connections(srv, n):
    """N half-sent requests; how many are still held after the header timeout."""
    socks = []
    for _ in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            s.setblocking(False)
            socks.append(s)
        except OSError:
            break
    time.sleep(0.3)
    status, headers, _, took = await request(srv.port, "GET", "/health", timeout=5)
    during = f"{status} in {took * 1000:.0f} ms" + (
        f" (Retry-After {headers['retry-after']})" if "retry-after" in headers else ""
    )
    time.sleep(3.7)
    held = refused = 0
    for s in socks:
        try:
            got = s.recv(64)  # b"" (closed) or a refusal's bytes: not held
            refused += 1 if got.startswith(b"HTTP/1.1 503") else 0
        except BlockingIOError:
            held += 1  # nothing to read and not closed: the server still holds it
        except OSError:
            pass
    for s in socks:
        s.close()
    time.sleep(0.3)
    status, _, _, took = await request(srv.port, "GET", "/health")
    print(
        f"connections: {len(socks)} half-sent requests opened; {refused} of them were answered "
        f"503 past the cap; a new client while they were held got {during}; still held 4 s "
        f"later (header timeout 3 s): {held}; after closing them /health answered {status} in "
        f"{took * 1000:.0f} ms"
    )


async def phase_logins(srv):
    """64 users log in over and over (each its own account, as a real crowd would)."""
    users = [f"crowd{i}@abuse.test" for i in range(64)]
    made = await asyncio.gather(
        *[
            request(
                srv.port,
                "POST",
                "/auth-api/v1/registeruser",
                {"email": u, "password": "password123", "fullname": "Crowd"},
                timeout=60,
            )
            for u in users
        ]
    )
    assert all(s in (201, 409) for s, _, _, _ in made), counts(s for s, _, _, _ in made)

    async def lists(k):
        took = []
        for _ in range(k):
            s, _, _, t = await request(srv.port, "GET", "/propertycatalog-api/v1/listings")
            took.append((s, t))
        return took

    alone = await lists(30)
    stop = time.time() + 4
    logins = []

    async def login_loop(user):
        while time.time() < stop:
            s, _, _, _ = await request(
                srv.port,
                "POST",
                "/auth-api/login",
                {"username": user, "password": "password123"},
                timeout=30,
            )
            logins.append(s)

    crowd = [asyncio.create_task(login_loop(u)) for u in users]
    await asyncio.sleep(0.5)
    loaded = await lists(30)
    await asyncio.gather(*crowd)
    a = [t for _, t in alone]
    b = [t for _, t in loaded]
    print(
        f"logins: listListings alone p50 {pct(a, 0.5):.1f} ms p95 {pct(a, 0.95):.1f} ms; under 64 "
        f"concurrent logins p50 {pct(b, 0.5):.1f} ms p95 {pct(b, 0.95):.1f} ms, statuses "
        f"{counts(s for s, _ in loaded)}; logins answered {counts(logins)}"
    )


ADMIN_KEY = []


async def phase_rate(srv):
    key = srv.admin_key or (ADMIN_KEY[0] if ADMIN_KEY else None)
    if not key:
        print("rate: no bootstrap API key printed (data dir not fresh?); skipped")
        return
    limited = ok = other = 0
    first = None
    for i in range(300):
        rpc = {
            "jsonrpc": "2.0",
            "id": i,
            "method": "tools/call",
            "params": {"name": "getCurrentUser", "arguments": {}},
        }
        s, _, body, _ = await request(srv.port, "POST", "/mcp", rpc, token=key)
        try:
            result = json.loads(body)["result"]
        except Exception:
            other += 1
            continue
        text = (result.get("content") or [{}])[0].get("text", "")
        if result.get("isError") and text.startswith("RateLimited:"):
            limited += 1
            first = first if first is not None else i + 1
        elif not result.get("isError"):
            ok += 1
        else:
            other += 1
    rest = [
        (await request(srv.port, "GET", "/currentuser", token=key))[0] for _ in range(20)
    ]
    print(
        f"rate: 300 MCP calls from one API key: {ok} ok, {limited} RateLimited (first at call "
        f"{first}), {other} other; 20 more over REST: {counts(rest)}"
    )


async def phase_overload(srv, n):
    before = srv.errors_logged()
    started = time.perf_counter()
    results = await asyncio.gather(
        *[
            request(srv.port, "GET", "/propertycatalog-api/v1/listings?pageRowCount=50", timeout=30)
            for _ in range(n)
        ]
    )
    took = time.perf_counter() - started
    statuses = [s for s, _, _, _ in results]
    with_retry = sum(1 for s, h, _, _ in results if s == 503 and "retry-after" in h)
    why = {}
    for s, _, body, _ in results:
        if s == 503:
            try:
                msg = json.loads(body).get("message", "")[:40]
            except Exception:
                msg = "?"
            why[msg] = why.get(msg, 0) + 1
    time.sleep(0.5)
    print(
        f"overload: {n} concurrent listListings on a 5-connection pool in {took:.1f} s: "
        f"{counts(statuses)} (0 = connection failed); 503s with Retry-After: {with_retry}; "
        f"ERROR lines logged: {srv.errors_logged() - before}; WARN lines: "
        f"{sum(1 for l in srv.stderr if re.search(r'[^A-Z]WARN[^A-Z]', l))}; 503 causes: {why}"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/haven")
    ap.add_argument("--only", choices=["connections", "logins", "rate", "overload"])
    ap.add_argument("--half-sent", type=int, default=1000)
    ap.add_argument("--overload", type=int, default=1500)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    data = tempfile.mkdtemp(prefix="haven-abuse-", dir=os.environ.get("TMPDIR", "/tmp"))
    os.chmod(data, 0o755)
    phases = [
        (
            "connections",
            {"HAVEN_HEADER_READ_TIMEOUT_SECS": 3, "HAVEN_MAX_CONNECTIONS": 512},
            lambda s: phase_connections(s, args.half_sent),
        ),
        (
            "logins",
            # One client address for the whole crowd: per-IP limits would refuse most of it.
            {
                "HAVEN_ANON_RATE_LIMIT_PER_MINUTE": 0,
                "HAVEN_REGISTRATIONS_PER_IP_PER_HOUR": 0,
                "HAVEN_LOGIN_MAX_FAILURES_PER_IP": 0,
            },
            phase_logins,
        ),
        ("rate", {}, phase_rate),
        (
            "overload",
            {"HAVEN_DB_MAX_CONNECTIONS": 5, "HAVEN_ANON_RATE_LIMIT_PER_MINUTE": 0},
            lambda s: phase_overload(s, args.overload),
        ),
    ]
    print(f"haven binary {args.bin}; data dir {data}")
    for name, env, run in phases:
        if args.only and args.only != name:
            continue
        print(f"-- {name}: {env or 'defaults'}")
        srv = Server(args.bin, data, env)
        time.sleep(0.2)
        if srv.admin_key:
            ADMIN_KEY.append(srv.admin_key)
        try:
            asyncio.run(run(srv))
        finally:
            srv.stop()
    shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
