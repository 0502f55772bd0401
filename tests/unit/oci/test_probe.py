"""The warm and express paths' registry probe: several manifests asked side by side give
exactly what asking them one by one gives, each on a connection of its own — against a
real socket server (one thread per connection), the registry faked at its HTTP boundary."""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import TYPE_CHECKING

import pytest

from safedocker.oci.probe import ProbeFailed, RegistryProbe, TokenCache

if TYPE_CHECKING:
    from pathlib import Path

DIGESTS = {"/v2/team/app/manifests/v1": "sha256:" + "a" * 64,
           "/v2/team/app/manifests/sha256-" + "a" * 64 + ".sig": "sha256:" + "b" * 64}


def serve(status_of: dict[str, int] | None = None, *, token: list[str] | None = None
          ) -> tuple[int, list[str], list[int]]:
    """A registry answering HEAD by path (404 for anything else); returns its port, the
    paths asked and a one-item list counting connections. With ``token`` (one item: the
    token it takes now) it asks for ``Bearer`` as Docker Hub does and serves /token."""
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
                sent = (b"Authorization: Bearer " + (token[0].encode() if token else b"")).lower()
                asked.append(path + (" (token)" if sent in head.lower() else ""))
                if token is not None and path.startswith("/token?"):
                    body = json.dumps({"token": token[0], "expires_in": 300}).encode()
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                                 % (len(body), body))
                    continue
                if token is not None and sent not in head.lower():
                    port = listener.getsockname()[1]
                    conn.sendall(f'HTTP/1.1 401 X\r\nWww-Authenticate: Bearer realm="http:'
                                 f'//127.0.0.1:{port}/token",service="reg"\r\n'
                                 "Content-Length: 0\r\n\r\n".encode())
                    continue
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


def test_a_token_is_fetched_once_kept_and_sent_first_by_the_next_run(tmp_path: Path) -> None:
    taken = ["T1"]
    port, asked, _ = serve(token=taken)
    tokens = TokenCache(tmp_path)
    config = str(tmp_path / "docker-config")  # no credentials: an anonymous token
    first = RegistryProbe(f"127.0.0.1:{port}", "http", tokens=tokens, docker_config=config)
    found = first.manifest_digest(*WANTED[0])
    first.close()
    assert found is not None
    assert [a.split("?")[0] for a in asked] == [
        "/v2/team/app/manifests/v1", "/token", "/v2/team/app/manifests/v1 (token)"]
    assert os.stat(tokens.path).st_mode & 0o777 == 0o600
    asked.clear()
    later = RegistryProbe(f"127.0.0.1:{port}", "http", tokens=tokens, docker_config=config)
    assert later.manifest_digests(WANTED[:2]) == [found, later.manifest_digest(*WANTED[1])]
    later.close()
    assert asked == [f"/v2/{r}/manifests/{t} (token)" for r, t in WANTED[:2]] + [
        f"/v2/{WANTED[1][0]}/manifests/{WANTED[1][1]} (token)"]


def test_a_kept_token_the_registry_no_longer_takes_fails_the_probe(tmp_path: Path) -> None:
    taken = ["T1"]
    port, _, _ = serve(token=taken)
    tokens = TokenCache(tmp_path)
    config = str(tmp_path / "docker-config")
    first = RegistryProbe(f"127.0.0.1:{port}", "http", tokens=tokens, docker_config=config)
    assert first.manifest_digest(*WANTED[0]) is not None
    first.close()
    taken[0] = "T2"  # revoked: the kept T1 is refused now
    later = RegistryProbe(f"127.0.0.1:{port}", "http", tokens=tokens, docker_config=config)
    with pytest.raises(ProbeFailed):
        later.manifest_digest(*WANTED[0])
    with pytest.raises(ProbeFailed):
        later.manifest_digests(WANTED[:2])
    later.close()
