"""The warm and express paths' registry probe: several manifests asked side by side give
exactly what asking them one by one gives, each on a connection of its own — against a
real socket server (one thread per connection), the registry faked at its HTTP boundary."""

from __future__ import annotations

import socket
import threading

import pytest

from safedocker.oci.probe import ProbeFailed, RegistryProbe

DIGESTS = {"/v2/team/app/manifests/v1": "sha256:" + "a" * 64,
           "/v2/team/app/manifests/sha256-" + "a" * 64 + ".sig": "sha256:" + "b" * 64}


def serve(status_of: dict[str, int] | None = None) -> tuple[int, list[str], list[int]]:
    """A registry answering HEAD by path (404 for anything else); returns its port, the
    paths asked and a one-item list counting connections."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    asked: list[str] = []
    connections = [0]

    def handle(conn: socket.socket) -> None:
        try:
            answer(conn)
        except OSError:
            pass  # the client closed or reset: done

    def answer(conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                path = head.split(b" ")[1].decode()
                asked.append(path)
                status = (status_of or {}).get(path, 200 if path in DIGESTS else 404)
                extra = f"Docker-Content-Digest: {DIGESTS[path]}\r\n" if status == 200 else ""
                conn.sendall(f"HTTP/1.1 {status} X\r\n{extra}Content-Length: 0\r\n\r\n"
                             .encode())

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections[0] += 1
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1], asked, connections


WANTED = [("team/app", "v1"), ("team/app", "sha256-" + "a" * 64 + ".sig"),
          ("team/app", "missing")]


def test_side_by_side_answers_are_the_one_by_one_answers_each_on_its_own_connection() -> None:
    port, asked, connections = serve()
    one_by_one = RegistryProbe(f"127.0.0.1:{port}", "http")
    expected = [one_by_one.manifest_digest(r, t) for r, t in WANTED]
    one_by_one.close()
    assert connections[0] == 1
    probe = RegistryProbe(f"127.0.0.1:{port}", "http")
    assert probe.manifest_digests(WANTED) == expected
    probe.close()
    assert expected[0] is not None and expected[0][0] == DIGESTS["/v2/team/app/manifests/v1"]
    assert expected[2] is None
    assert connections[0] == 1 + len(WANTED)
    assert sorted(asked[len(WANTED):]) == sorted(asked[:len(WANTED)])


def test_an_odd_answer_side_by_side_fails_the_probe_as_one_by_one_does() -> None:
    port, _, _ = serve({"/v2/team/app/manifests/v1": 500})
    probe = RegistryProbe(f"127.0.0.1:{port}", "http")
    with pytest.raises(ProbeFailed):
        probe.manifest_digests(WANTED)
    probe.close()
