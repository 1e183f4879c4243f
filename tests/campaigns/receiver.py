"""A real HTTP receiver on 127.0.0.1 that verifies Standard Webhooks signatures."""

import http.server
import threading
import time
from contextlib import contextmanager

from standardwebhooks import Webhook, WebhookVerificationError


@contextmanager
def webhook_receiver(secret: str | None, *, status: int = 200, delay: float = 0.0):
    received: list[dict] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            entry = {"headers": dict(self.headers), "body": body, "verified": None}
            try:
                entry["verified"] = Webhook(secret).verify(body, dict(self.headers)) if secret else None
            except WebhookVerificationError as exc:
                entry["error"] = str(exc)
            received.append(entry)
            if delay:
                time.sleep(delay)
            try:
                self.send_response(status)
                self.end_headers()
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/pulse", received
    finally:
        server.shutdown()
        server.server_close()
