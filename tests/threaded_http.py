"""A small HTTP/1.1 server for tests at the HTTP boundary (a registry, a token service):
on 127.0.0.1, one thread per connection, each request's head answered by ``respond``;
over TLS when given a server context (tests/tls_world.py makes one). Connections are kept
alive, so a client's second question may come on the same socket."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import ssl
    from collections.abc import Callable


class Server:
    """``respond(head)`` gives the whole answer (status line, headers, body) to one
    request's head (request line and headers, without the blank line)."""

    def __init__(self, respond: Callable[[bytes], bytes], *,
                 tls: ssl.SSLContext | None = None) -> None:
        self.respond = respond
        self.tls = tls
        self.heads: list[bytes] = []  # every request's head, in the order served
        self.connections = 0
        self.closed = 0  # connections the client closed (or reset) since
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        # As Go's servers (registries) do: without it, over TLS the answer waits out the
        # client's delayed ACK of the session tickets sent just before it (Nagle, 40 ms).
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)  # a failed handshake: done
            with conn:
                data = b""
                while True:
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            return
                        data += chunk
                    head, _, data = data.partition(b"\r\n\r\n")
                    self.heads.append(head)
                    conn.sendall(self.respond(head))
        except OSError:
            pass  # the client closed or reset: done
        finally:
            self.closed += 1


def answer(status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    """An HTTP/1.1 answer with Content-Length."""
    lines = [f"HTTP/1.1 {status} X", *(f"{k}: {v}" for k, v in (headers or {}).items()),
             f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def path_of(head: bytes) -> str:
    return head.split(b" ")[1].decode()


def trickle(prefix: bytes, byte: bytes, every: float) -> int:
    """A server's port that, on its one connection, reads the client's first bytes, sends
    ``prefix``, then ``byte`` every ``every`` seconds until the client goes: an answer
    dripped past every deadline."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def run() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                try:
                    conn.sendall(prefix)
                    while True:
                        time.sleep(every)
                        conn.sendall(byte)
                except OSError:
                    return  # the client went

    threading.Thread(target=run, daemon=True).start()
    return int(listener.getsockname()[1])


def serve_raw(answers: list[bytes], *, close_after_each: bool = False,
              silent_after: bool = False) -> tuple[int, list[bytes]]:
    """A server's port that answers each request with the next of ``answers``, sent as they
    are (one may hold more than one answer, or none that HTTP reads), and the heads it
    read; with ``silent_after``, later requests on the connection are read and never
    answered."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    seen: list[bytes] = []

    def run() -> None:
        pending = list(answers)
        with listener:
            while pending:
                conn, _ = listener.accept()
                with conn:
                    while pending or silent_after:
                        data = b""
                        while b"\r\n\r\n" not in data:
                            chunk = conn.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                        if b"\r\n\r\n" not in data:
                            break
                        seen.append(data)
                        if pending:
                            conn.sendall(pending.pop(0))
                            if close_after_each:
                                break

    threading.Thread(target=run, daemon=True).start()
    return int(listener.getsockname()[1]), seen
