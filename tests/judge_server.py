"""A small OpenAI-compatible chat server on 127.0.0.1 for the judge tests (real HTTP)."""

from __future__ import annotations

import json
import re
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def prefers_good(user: str) -> str:
    """Picks the response that contains GOOD; 'tie' when both or neither do."""
    a = re.search(r"Response A:\n(.*?)\n\nResponse B:", user, re.S).group(1)
    b = re.search(r"Response B:\n(.*?)\n\nWhich response", user, re.S).group(1)
    if ("GOOD" in a) == ("GOOD" in b):
        return "tie"
    return "A" if "GOOD" in a else "B"


class _Server(ThreadingHTTPServer):
    """The served behaviour (see `serve`) and the log of requests, shared by handlers."""

    daemon_threads = True

    def __init__(self, mode: str, delay: float, busy: int, busy_status: int, body: bytes):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode, self.delay, self.body = mode, delay, body
        self.busy, self.busy_status = busy, busy_status
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = 0


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args):
        pass

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization")
        # Under one lock: concurrent clients must not see each other's count.
        with server.lock:
            server.in_flight += 1
            entry = {"path": self.path, "auth": auth, "in_flight": server.in_flight, **body}
            server.requests.append(entry)
            n = len(server.requests)
        try:
            self._answer(n, body["messages"][-1]["content"], auth)
        finally:
            with server.lock:
                server.in_flight -= 1

    def _answer(self, n: int, user: str, auth: str | None):
        mode = self.server.mode
        if n <= self.server.busy:
            self._send(self.server.busy_status, b'{"error": {"message": "busy"}}', retry_after="1")
            return
        if mode == "slow":
            time.sleep(self.server.delay)
        if mode == "raw":
            self._send(200, self.server.body)
        elif mode == "deny":
            message = f"Incorrect API key provided: {auth}"
            self._send(401, json.dumps({"error": {"message": message}}).encode())
        elif mode == "garbage" and n % 2:
            self._send(200, b"<html>this is not json</html>", "text/html")
        elif mode == "garbage":
            self._reply("Both responses have merits; hard to say.")
        else:
            self._reply("A" if mode == "first" else prefers_good(user))

    def _reply(self, text: str):
        payload = {"choices": [{"message": {"role": "assistant", "content": text}}]}
        self._send(200, json.dumps(payload).encode())

    def _send(self, code: int, data: bytes, kind: str = "application/json", retry_after=None):
        try:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)


@contextmanager
def serve(
    mode: str = "good",
    delay: float = 0.0,
    busy: int = 0,
    busy_status: int = 429,
    body: bytes = b"",
):
    """mode: good (sensible verdicts), first (always 'A': pure position bias), garbage
    (replies that are no verdict, or not even JSON), slow (sleeps `delay` seconds, then
    sensible verdicts), deny (HTTP 401 whose body echoes the bearer token, as OpenAI's
    does), raw (`body`, served as JSON whatever it is). The first `busy` requests get
    `busy_status` with `Retry-After: 1` instead. Each logged request records
    `in_flight`: how many were being served when it came."""
    server = _Server(mode, delay, busy, busy_status, body)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", server.requests
    finally:
        server.shutdown()
        server.server_close()
