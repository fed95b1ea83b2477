#!/usr/bin/env python3
"""A scripted OpenAI-compatible chat-completions server for CI (stdlib only; CI has no internet).

Usage: python3 .ci/scripted_llm.py PORT   (listens on 127.0.0.1:PORT, prints a ready line)

Point Haven at it with HAVEN_LLM_BASE_URL=http://127.0.0.1:PORT/v1. It is stateless and
deterministic: for `POST /v1/chat/completions` with `"stream": true`
  * when the conversation has no `tool` message yet, it streams a call of `listListings` with
    arguments `{"pageRowCount": 3}` (the arguments text split across chunks, as real providers do);
  * otherwise it streams the text `Found N homes.`, N being the length of the `listings` array in
    the last tool message's JSON (0 when that does not parse).
A conversation whose first user message starts with `slow:` waits 30 s before its first answer (the
MCP cancellation checks cancel such a run mid-flight). Every stream is the real wire format: `data: <chunk json>\\n\\n` events, a final usage chunk with
empty `choices`, then `data: [DONE]`. A request without `"stream": true` gets a 400 with an
OpenAI-style error body; any other path a 404.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "scripted"
TOOL_NAME = "listListings"
TOOL_ARGS = json.dumps({"pageRowCount": 3})


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """One `chat.completion.chunk` carrying `delta` and an optional finish reason."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def usage(prompt: int, completion: int) -> dict[str, Any]:
    """The final usage chunk (empty choices), as sent for `stream_options.include_usage`."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def tool_call_turn() -> list[dict[str, Any]]:
    """A streamed call of listListings: the call's header first, then the arguments in two parts."""
    half = len(TOOL_ARGS) // 2
    head = {"index": 0, "id": "call_ci_1", "type": "function", "function": {"name": TOOL_NAME, "arguments": ""}}
    return [
        chunk({"role": "assistant", "content": None, "tool_calls": [head]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": TOOL_ARGS[:half]}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": TOOL_ARGS[half:]}}]}),
        chunk({}, "tool_calls"),
        usage(120, 18),
    ]


def text_turn(text: str) -> list[dict[str, Any]]:
    """A streamed final answer, the text split across two chunks."""
    half = len(text) // 2
    return [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": text[:half]}),
        chunk({"content": text[half:]}, "stop"),
        usage(240, 9),
    ]


def listings_in(content: Any) -> int:
    """How many listings a tool message's JSON holds (0 when it is not such JSON)."""
    try:
        value = json.loads(content) if isinstance(content, str) else content
        listings = value.get("listings") if isinstance(value, dict) else None
        return len(listings) if isinstance(listings, list) else 0
    except (TypeError, ValueError):
        return 0


SLOW_SECONDS = 30


def is_slow(messages: list[Any]) -> bool:
    """Whether the conversation asked to be slow (its first user message starts with `slow:`)."""
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return bool(users) and str(users[0].get("content", "")).startswith("slow:")


def reply_for(messages: list[Any]) -> list[dict[str, Any]]:
    """The scripted turn for a conversation: call the tool first, then report what it found."""
    tool_messages = [m for m in messages if isinstance(m, dict) and m.get("role") == "tool"]
    if not tool_messages:
        return tool_call_turn()
    return text_turn(f"Found {listings_in(tool_messages[-1].get('content'))} homes.")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "scripted-llm/1"

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self.error(404, f"no route {self.path}", "not_found")
        try:
            req = json.loads(raw or b"null")
        except ValueError:
            return self.error(400, "the body is not JSON", "invalid_request_error")
        if not isinstance(req, dict) or req.get("stream") is not True:
            return self.error(400, "this scripted server only answers streaming requests", "invalid_request_error")
        messages = req.get("messages")
        if is_slow(messages if isinstance(messages, list) else []):
            time.sleep(SLOW_SECONDS)
        chunks = reply_for(messages if isinstance(messages, list) else [])
        body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        self.send(200, "text/event-stream", body.encode())

    def do_GET(self) -> None:  # noqa: N802
        self.error(404, f"no route {self.path}", "not_found")

    def error(self, status: int, message: str, kind: str) -> None:
        body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
        self.send(status, "application/json", json.dumps(body).encode())

    def send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: Any) -> None:
        sys.stderr.write(f"scripted-llm: {self.address_string()} {fmt % args}\n")


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit(f"usage: {sys.argv[0]} PORT")
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    print(f"scripted-llm: ready on http://127.0.0.1:{server.server_port}/v1", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
