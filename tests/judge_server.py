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


@contextmanager
def serve(mode: str = "good", delay: float = 0.0):
    """mode: good (sensible verdicts), first (always 'A': pure position bias), garbage
    (replies that are no verdict, or not even JSON), slow (sleeps `delay` seconds)."""
    requests: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
            user = body["messages"][-1]["content"]
            if mode == "slow":
                time.sleep(delay)
            if mode == "garbage":
                if len(requests) % 2:
                    self._send(200, b"<html>this is not json</html>", "text/html")
                else:
                    self._reply("Both responses have merits; hard to say.")
                return
            self._reply("A" if mode == "first" else prefers_good(user))

        def _reply(self, text: str):
            payload = {"choices": [{"message": {"role": "assistant", "content": text}}]}
            self._send(200, json.dumps(payload).encode(), "application/json")

        def _send(self, code: int, data: bytes, kind: str):
            try:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    finally:
        server.shutdown()
        server.server_close()
