"""A local webhook receiver that verifies Standard Webhooks signatures and prints events.

    .venv/bin/python -m devstack.receiver --secret whsec_… [--port 4000]   (or make receiver)

Register ``http://127.0.0.1:4000/`` as an endpoint (the local stack allows loopback URLs),
then every change shows up here, verified with the ``standardwebhooks`` reference library.
Tests use :class:`WebhookReceiver` with a ``respond`` policy to play slow, failing or gone
endpoints.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from standardwebhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    """One request as it arrived: path, headers (lower-case names), raw body, our answer."""

    path: str
    headers: dict[str, str]
    body: str
    status: int

    @property
    def event(self) -> dict[str, Any]:
        """The JSON payload."""
        return json.loads(self.body)


Respond = Callable[[str, dict[str, Any], int], int]  # (path, event, nth request) -> status


class WebhookReceiver:
    """HTTP server on 127.0.0.1 that records every request and answers per ``respond``;
    with ``secret``, a request whose Standard Webhooks signature does not verify against it
    is answered 401 (as a real receiver must, so the sender retries it) and ``respond``
    is not asked."""

    def __init__(self, port: int = 0, respond: Respond | None = None,
                 on_request: Callable[[Received], None] | None = None,
                 secret: str | None = None) -> None:
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self.respond = respond or (lambda path, event, n: 200)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length).decode()
                with receiver._lock:
                    nth = len(receiver.received)
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    status = (401 if secret is not None and not _verifies(body, headers, secret)
                              else receiver.respond(self.path, json.loads(body), nth))
                except ValueError:
                    status = 400
                record = Received(self.path, headers, body, status)
                with receiver._lock:
                    receiver.received.append(record)
                if on_request:
                    on_request(record)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:4000``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Self:
        """Serve in a background thread."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()

    def on(self, path: str) -> list[Received]:
        """Requests received on ``path``, in arrival order."""
        with self._lock:
            return [r for r in self.received if r.path == path]


def _verifies(body: str, headers: dict[str, str], secret: str) -> bool:
    """True when standardwebhooks verifies the request (a malformed signature is False)."""
    try:
        Webhook(secret).verify(body, headers)
    except (WebhookVerificationError, ValueError):  # ValueError: signature not base64
        return False
    return True


def verify(received: Received, secret: str) -> dict[str, Any]:
    """The verified payload (standardwebhooks' ``Webhook.verify``).

    Raises:
        WebhookVerificationError: bad signature, wrong secret or stale timestamp.
    """
    return Webhook(secret).verify(received.body, received.headers)


def main(argv: list[str] | None = None) -> int:
    """Console entry: print each verified event until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="devstack.receiver", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=4000)
    parser.add_argument("--secret", required=True, help="the endpoint's whsec_… secret")
    args = parser.parse_args(argv)

    def show(record: Received) -> None:
        try:
            event = verify(record, args.secret)
        except (WebhookVerificationError, ValueError) as err:
            print(f"REJECTED {record.headers.get('webhook-id')} (answered 401): {err}",
                  flush=True)
            return
        print(f"{event['type']} {event['id']} {json.dumps(event['data'])}", flush=True)

    receiver = WebhookReceiver(args.port, on_request=show, secret=args.secret).start()
    print(f"receiving on {receiver.url}/ — register it as a webhook endpoint; Ctrl-C stops",
          flush=True)
    try:
        receiver.thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
