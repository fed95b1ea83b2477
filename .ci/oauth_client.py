#!/usr/bin/env python3
"""End-to-end OAuth check of a running `haven serve` with the Python MCP SDK's own OAuth client.

Run with the CI venv: `.ci/venv/bin/python .ci/oauth_client.py --url http://127.0.0.1:PORT`.

The SDK's `OAuthClientProvider` (PyPI mcp==2.3.0) does discovery (the 401 challenge, RFC 9728
protected resource metadata, RFC 8414 server metadata), dynamic client registration (RFC 7591),
PKCE S256, the code exchange and the refresh. This script only plays the browser: it follows the
authorization URL, posts Haven's sign-in form and its consent form (carrying their CSRF cookie
and fields), and hands the redirect's `code`, `state` and `iss` back to the SDK. Then: a
tools/call as that user, a forced refresh (rotated refresh token), a revocation (RFC 7009), after
which the old access token gets 401 with the challenge. Ends with `oauth-client: N passed,
M failed` and exits 1 when any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import secrets
import sys
import time
import uuid
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

    def __init__(self, email: str, password: str) -> None:
        self.email, self.password = email, password
        self.result: AuthorizationCodeResult | None = None
        self.consent_page = ""

    async def redirect_handler(self, url: str) -> None:
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
                data={"step": "consent", "csrf": hidden(consent.text, "csrf") or "", "ticket": ticket or "", "decision": "allow"},
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


async def main(base: str) -> int:
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
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT")
    args = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(main(args.url.rstrip("/")), timeout=300))
    except BaseException as e:  # noqa: BLE001 - report and count any failure
        failed += 1
        print(f"  FAIL the flow raised {type(e).__name__}: {e}", flush=True)
    print(f"oauth-client: {passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
