"""A raw TCP webhook endpoint for delivery tests: one that never answers (a dead endpoint
that holds each delivery until its timeout) or one that answers 204 at once."""

from __future__ import annotations

import socket
import threading
import time


class SocketEndpoint:
    """A server on a free 127.0.0.1 port that accepts every connection.

    A ``silent`` one never answers; the others read the request's first bytes and answer
    ``204 No Content``. ``accepted`` holds the ``time.monotonic()`` of each connection;
    :meth:`close` closes the server and every connection (a hanging delivery then returns).
    """

    def __init__(self, silent: bool = True) -> None:
        self.silent = silent
        self.accepted: list[float] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}/"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return  # closed
            self._connections.append(connection)
            self.accepted.append(time.monotonic())
            if not self.silent:
                connection.recv(1024)
                connection.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    def close(self) -> None:
        """Stop accepting and close every connection (idempotent)."""
        self._server.close()
        for connection in self._connections:
            connection.close()
