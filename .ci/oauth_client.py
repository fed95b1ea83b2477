#!/usr/bin/env python3
"""End-to-end OAuth check of a running `haven serve` with the Python MCP SDK's own OAuth client.

Run with the CI venv: `.ci/venv/bin/python .ci/oauth_client.py --url http://127.0.0.1:PORT`.

The SDK's `OAuthClientProvider` (PyPI mcp==2.3.0) does discovery (the 401 challenge, RFC 9728
protected resource metadata, RFC 8414 server metadata), dynamic client registration (RFC 7591),
PKCE S256, the code exchange and the refresh. This script only plays the browser: it follows the
authorization URL, posts Haven's sign-in form and its consent form (carrying their CSRF cookie
and fields), and hands the redirect's `code`, `state` and `iss` back to the SDK. Then: a
tools/call as that user, a forced refresh (rotated refresh token), a revocation (RFC 7009), after
which the old access token gets 401 with the challenge.

Then a second app that does not register: it names itself by the https URL of a Client ID Metadata
Document served by this script (a self-signed certificate for `localhost`, whose PEM is written to
`--ca-file`, the file Haven's `HAVEN_OAUTH_CLIENT_METADATA_CA_FILE` names). The person grants it
read-only access on the consent page; it reads, then calls a tool that writes: Haven answers 403
`insufficient_scope`, the SDK re-authorizes with the scopes the challenge names (the browser signs
in again and allows), and the write goes through. Ends with `oauth-client: N passed, M failed` and exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import html
import http.server
import json
import re
import secrets
import socket
import ssl
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT = "http://127.0.0.1:45678/callback"
TIMEOUT = 60.0

passed = 0
failed = 0


def check(cond: bool, what: str) -> None:
    global passed, failed
    if cond:
        passed += 1
        print(f"  ok   {what}", flush=True)
    else:
        failed += 1
        print(f"  FAIL {what}", flush=True)


class Memory(TokenStorage):
    """Tokens and client registration kept in memory (what a connector would persist)."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def hidden(page: str, name: str) -> str | None:
    m = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    return html.unescape(m.group(1)) if m else None


class Browser:
    """Plays the user's browser: sign-in page, then consent, then reads the redirect."""

    def __init__(self, email: str, password: str, decisions: list[str] | None = None) -> None:
        self.email, self.password = email, password
        # The consent answers, in order ("allow", or "allow_read" to grant read-only access).
        self.decisions = list(decisions or [])
        self.result: AuthorizationCodeResult | None = None
        self.consent_page = ""
        self.sign_ins = 0
        self.scopes: list[str] = []

    async def redirect_handler(self, url: str) -> None:
        self.sign_ins += 1
        self.scopes.append(parse_qs(urlparse(url).query).get("scope", [""])[0])
        async with httpx2.AsyncClient(timeout=TIMEOUT, follow_redirects=False) as b:
            page = await b.get(url)
            check(page.status_code == 200 and "Sign in to Haven" in page.text, "authorize shows the sign-in page")
            form = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
            form.update(step="login", csrf=hidden(page.text, "csrf") or "", email=self.email, password=self.password)
            consent = await b.post(url.split("?")[0], data=form)
            self.consent_page = consent.text
            ticket = hidden(consent.text, "ticket")
            check(consent.status_code == 200 and ticket is not None, "signing in shows the consent page")
            check("CI OAuth client" in consent.text and "127.0.0.1" in consent.text, "consent names the client and redirect host")
            answer = await b.post(
                url.split("?")[0],
                data={
                    "step": "consent",
                    "csrf": hidden(consent.text, "csrf") or "",
                    "ticket": ticket or "",
                    "decision": self.decisions.pop(0) if self.decisions else "allow",
                },
            )
            location = answer.headers.get("location", "")
            check(answer.status_code == 303 and location.startswith(REDIRECT), f"allow redirects to the client ({answer.status_code})")
            q = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
            self.result = AuthorizationCodeResult(code=q.get("code", ""), state=q.get("state"), iss=q.get("iss"))

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.result is not None, "the redirect handler did not finish"
        return self.result


async def call_current_user(mcp_url: str, auth: httpx2.Auth) -> str:
    async with httpx2.AsyncClient(auth=auth, timeout=TIMEOUT) as http:
        async with Client(streamable_http_client(mcp_url, http_client=http), mode="legacy") as c:
            result = await c.call_tool("getCurrentUser", {})
            return (result.structured_content or {}).get("email", "")


class DocumentHost:
    """An https server on 127.0.0.1 (certificate for `localhost`) serving one client metadata
    document, in a thread; counts the fetches."""

    def __init__(self, ca_file: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        ca_file.write_bytes(cert_pem)
        self.dir = tempfile.TemporaryDirectory()
        cert_path, key_path = Path(self.dir.name, "cert.pem"), Path(self.dir.name, "key.pem")
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"https://localhost:{self.port}/oauth/ci-client.json"
        self.fetches = 0
        document = json.dumps(
            {
                "client_id": self.url,
                "client_name": "CI OAuth client",
                "redirect_uris": [REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
            }
        ).encode()
        host = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                host.fetches += 1
                self.send_response(200 if self.path == "/oauth/ci-client.json" else 404)
                self.send_header("content-type", "application/json")
                self.send_header("cache-control", "max-age=600")
                self.send_header("content-length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.dir.cleanup()


async def call_tool(mcp_url: str, auth: httpx2.Auth, name: str, args: dict) -> tuple[bool, dict]:
    async with httpx2.AsyncClient(auth=auth, timeout=TIMEOUT) as http:
        async with Client(streamable_http_client(mcp_url, http_client=http), mode="legacy") as c:
            result = await c.call_tool(name, args)
            return bool(result.is_error), result.structured_content or {}


async def metadata_document_and_step_up(base: str, email: str, password: str, ca_file: Path) -> None:
    """A connector identified by its metadata document, authorized read-only, stepping up."""
    mcp_url = f"{base}/mcp"
    host = DocumentHost(ca_file)
    try:
        storage = Memory()
        # The person grants read-only access on the first consent, then full access when the app
        # comes back for it.
        browser = Browser(email, password, decisions=["allow_read", "allow"])
        provider = OAuthClientProvider(
            server_url=mcp_url,
            client_metadata=OAuthClientMetadata(
                client_name="CI OAuth client",
                redirect_uris=[REDIRECT],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=storage,
            redirect_handler=browser.redirect_handler,
            callback_handler=browser.callback_handler,
            client_metadata_url=host.url,
        )
        who = await call_current_user(mcp_url, provider)
        check(who == email, f"a metadata-document client reads as the user ({who})")
        check(
            storage.client is not None and storage.client.client_id == host.url,
            "the client_id is the metadata document's URL (no registration)",
        )
        check(host.fetches >= 1, f"Haven fetched the document over TLS ({host.fetches} fetch)")
        tokens = storage.tokens
        check(tokens is not None and tokens.scope == "haven:read", f"the person granted read-only access ({tokens and tokens.scope})")
        err, key = await call_tool(mcp_url, provider, "createApiKey", {"description": "stepped up in CI"})
        check(not err and bool(key.get("id")), f"a write after the insufficient_scope step-up succeeds (api key {key.get('id')})")
        tokens = storage.tokens
        check(
            tokens is not None and "haven:full" in (tokens.scope or "").split(),
            f"the step-up granted haven:full ({tokens and tokens.scope})",
        )
        check(
            browser.sign_ins == 2 and "haven:full" in browser.scopes[-1].split(),
            f"the SDK re-authorized once, asking for the challenge's scopes ({browser.scopes})",
        )
    finally:
        host.close()


async def main(base: str, ca_file: Path | None) -> int:
    mcp_url = f"{base}/mcp"
    email = f"oauth-{uuid.uuid4().hex[:10]}@example.com"
    password = "Pw-" + secrets.token_urlsafe(12)
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        r = await http.post(f"{base}/auth-api/v1/registeruser", json={"email": email, "password": password, "fullname": "OAuth CI"})
        check(r.status_code == 201, f"registered a user ({r.status_code})")
        r = await http.post(mcp_url, json={"jsonrpc": "2.0", "id": 1, "method": "ping"}, headers={"accept": "application/json, text/event-stream"})
        challenge = r.headers.get("www-authenticate", "")
        check(r.status_code == 401 and "resource_metadata=" in challenge, f"/mcp without a credential: 401 with the challenge ({challenge})")

    storage = Memory()
    browser = Browser(email, password)
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="CI OAuth client",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )
    who = await call_current_user(mcp_url, provider)
    check(who == email, f"tools/call getCurrentUser as the signed-in user ({who})")
    check(storage.client is not None and storage.client.client_id.startswith("haven-"), "the client was registered dynamically")
    first = storage.tokens
    check(first is not None and bool(first.refresh_token), "a refresh token was issued")

    # Force a refresh: the SDK refreshes when it thinks the access token expired.
    provider.context.token_expiry_time = time.time() - 1
    who = await call_current_user(mcp_url, provider)
    second = storage.tokens
    check(who == email, "tools/call after the refresh")
    check(
        second is not None and first is not None and second.refresh_token != first.refresh_token and second.access_token != first.access_token,
        "the refresh rotated both tokens",
    )

    # Revoke (RFC 7009), then the access token is dead.
    assert second is not None and storage.client is not None
    async with httpx2.AsyncClient(timeout=TIMEOUT) as http:
        r = await http.post(f"{base}/oauth/revoke", data={"token": second.refresh_token or "", "client_id": storage.client.client_id})
        check(r.status_code == 200, f"revocation answered 200 ({r.status_code})")
        r = await http.post(
            mcp_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
            headers={"accept": "application/json, text/event-stream", "authorization": f"Bearer {second.access_token}"},
        )
        check(r.status_code == 401 and "invalid_token" in r.headers.get("www-authenticate", ""), f"after revocation: 401 invalid_token ({r.status_code})")
        r = await http.post(
            f"{base}/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": second.refresh_token or "", "client_id": storage.client.client_id},
        )
        check(r.status_code == 400 and r.json().get("error") == "invalid_grant", "the revoked refresh token is refused")

    if ca_file is None:
        check(False, "--ca-file is required for the metadata-document check")
    else:
        await metadata_document_and_step_up(base, email, password, ca_file)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    parser.add_argument("--ca-file", type=Path, help="where to write the document host's certificate (HAVEN_OAUTH_CLIENT_METADATA_CA_FILE)")
    args = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(main(args.url.rstrip("/"), args.ca_file), timeout=300))
    except BaseException as e:  # noqa: BLE001 - report and count any failure
        failed += 1
        while isinstance(e, BaseExceptionGroup) and e.exceptions:
            e = e.exceptions[0]
        print(f"  FAIL the flow raised {type(e).__name__}: {e}", flush=True)
    print(f"oauth-client: {passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
