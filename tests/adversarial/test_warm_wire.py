"""A hostile registry (or anyone on the path of a plain-HTTP one) against the warm and
express paths' wire: an answer dripped past every deadline, a status or length written in
digits Python reads but HTTP does not, a second answer smuggled behind a HEAD's. Each one
is a miss (the full path decides) within a bounded wait, never a digest taken from an
answer to another question."""

from __future__ import annotations

import socket
import threading
import time
from typing import TYPE_CHECKING

import pytest

from safedocker._internal import minihttp
from safedocker._internal.minihttp import Connection, HttpFailed, tcp
from safedocker.oci.probe import ProbeFailed, RegistryProbe
from tests.threaded_http import serve_raw, trickle
from tests.tls_world import Authority

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


@pytest.fixture
def tls_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setattr(minihttp, "_TLS", {})
    yield


def test_a_tls_handshake_dripped_a_byte_at_a_time_is_given_up_on_within_the_timeout(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ServerHello record announced 16 KiB long and sent a byte every 50 ms: each byte
    within the socket's timeout, the handshake never whole. _ssl bounds the handshake as
    a whole by the timeout, not each read."""
    authority = Authority("safedocker test ca")
    directory = authority.hashed_dir(tmp_path / "certs")
    monkeypatch.setattr(minihttp, "_system_ca_dir", lambda: str(directory))
    port = trickle(b"\x16\x03\x03\x40\x00", b"\x02", 0.05)
    started = time.monotonic()
    with pytest.raises(OSError, match="timed out"):
        tcp("127.0.0.1", port, 0.5, tls=True)()
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("raw", [
    b"HTTP/1.1 \xb200 OK\r\nDocker-Content-Digest: " + DIGEST.encode() + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n",
], ids=["status in superscript digits", "length in superscript digits"])
def test_digits_http_does_not_write_fail_the_answer_never_read_as_a_number(raw: bytes) -> None:
    """``'²'.isdigit()`` is true and ``int('²')`` fails: such an answer is no HTTP answer
    (HttpFailed, a failed probe), not a ValueError out of the reader."""
    port, _ = serve_raw([raw], silent_after=True)
    conn = Connection(tcp("127.0.0.1", port, 2.0, tls=False), f"127.0.0.1:{port}")
    try:
        with pytest.raises(HttpFailed):
            conn.request("GET", "/", body_max=100)
    finally:
        conn.close()


def test_an_answer_smuggled_behind_a_heads_is_never_taken_for_the_next_questions() -> None:
    """The tag's HEAD is answered with the tag's digest and, behind it, a second answer
    naming another digest; the next question (a ``.sig`` listing) on the kept-alive
    connection reads that second answer. The registry alone writes both, so this can say
    nothing it could not say directly: but the answer read must be the registry's bytes
    in order, never one that makes the probe report the first question's answer twice."""
    smuggled = (b"HTTP/1.1 200 OK\r\nDocker-Content-Digest: " + DIGEST.encode() +
                b"\r\nContent-Length: 0\r\n\r\n" +
                b"HTTP/1.1 200 OK\r\nDocker-Content-Digest: " + OTHER.encode() +
                b"\r\nContent-Length: 0\r\n\r\n")
    port, seen = serve_raw([smuggled], silent_after=True)
    probe = RegistryProbe(f"127.0.0.1:{port}", "http", timeout=2.0)
    try:
        first = probe.manifest_digest("team/app", "v1")
        second = probe.manifest_digest("team/app", "sha256-" + "a" * 64 + ".sig")
    finally:
        probe.close()
    assert first is not None and first[0] == DIGEST
    assert second is not None and second[0] == OTHER
    # Both questions were asked (the second answer is the server's): the probe read that
    # answer from its buffer, so the server's thread may read the question after it.
    deadline = time.monotonic() + 5.0
    while len(seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(seen) == 2


def test_a_registry_that_answers_401_with_a_token_taken_is_asked_no_more() -> None:
    """A 401 to a question sent with credentials is a failed probe, never another round."""
    raw = (b"HTTP/1.1 401 Unauthorized\r\nWww-Authenticate: Basic realm=\"x\"\r\n"
           b"Content-Length: 0\r\n\r\n")
    port, seen = serve_raw([raw * 3], silent_after=True)
    probe = RegistryProbe(f"127.0.0.1:{port}", "http", timeout=2.0)
    probe._auth["repository:team/app:pull"] = "Basic eDp5"
    try:
        with pytest.raises(ProbeFailed):
            probe.manifest_digest("team/app", "v1")
    finally:
        probe.close()
    assert len(seen) == 1


@pytest.mark.parametrize("port", [
    "1" + "0" * 30,  # past a C long: getaddrinfo raises OverflowError
    "99999",  # past 65535: getaddrinfo takes it modulo 65536 (port 34463)
    "\u00b2",  # a digit to str.isdigit, none to int
    "9" * 5000,  # past int()'s limit on digits
], ids=["past a C long", "past 65535", "superscript", "5000 digits"])
def test_a_token_realm_whose_port_is_no_port_fails_the_probe_and_connects_nowhere(
        port: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry (or anyone on a plain-HTTP registry's path) names the token service at
    ``https://host:PORT``. Anything but a port Go would dial is a failed probe (a miss):
    never a traceback out of the warm or express path, never a connection to another
    port than the one written."""
    from tests.threaded_http import Server, answer

    realm = f"https://localhost:{port}/token"
    server = Server(lambda head: answer(401, {"Www-Authenticate": f'Bearer realm="{realm}"'}))
    from safedocker.oci import probe as module

    dialed: list[int] = []

    def recorded(host: str, number: int, timeout: float, *, tls: bool,
                 cas: tuple[str, ...] = ()) -> object:
        dialed.append(number)
        return tcp(host, number, timeout, tls=tls, cas=cas)

    monkeypatch.setattr(module, "tcp", recorded)
    registry_port = server.port
    probe = RegistryProbe(server.host, "http", timeout=2.0)
    try:
        with pytest.raises(ProbeFailed):
            probe.manifest_digest("team/app", "v1")
    finally:
        probe.close()
        server.close()
    assert dialed == [registry_port]  # the registry alone: no token service was dialed


@pytest.mark.parametrize("netloc", ["registry.test:99999", "registry.test:" + "1" * 30,
                                    "[::1]:65536", "registry.test:\u00b2"])
def test_a_registry_name_whose_port_is_no_port_fails_the_probe(netloc: str) -> None:
    with pytest.raises(ProbeFailed):
        RegistryProbe(netloc, "http")


def test_a_warm_hit_whose_registry_names_a_token_service_past_any_port_is_a_miss(
        tmp_path: Path) -> None:
    """The whole warm path, not the probe alone: a record of the image is there, and the
    registry's 401 names a token realm whose port overflows a C long. The warm path
    returns (the full path decides), never a traceback with a Python class name."""
    from safedocker.cache.verdicts import ANY_PLATFORM, inputs_digest, store, warm_key
    from safedocker.gate import warm
    from tests.plans import private_env, private_where, record
    from tests.threaded_http import Server, answer

    realm = "https://localhost:1" + "0" * 30 + "/token"
    server = Server(lambda head: answer(401, {"Www-Authenticate": f'Bearer realm="{realm}"'}))
    try:
        env = {**private_env(tmp_path), "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
        where = private_where(env)
        name = f"{server.host}/team/app"
        store(where.cache_dir, warm_key(inputs_digest(where, env), f"{name}:v1", ANY_PLATFORM),
              name, record())
        warm.answer(["run", "--rm", f"{name}:v1"], env)  # returns: a miss
    finally:
        server.close()


@pytest.mark.parametrize("expires_in", ["1" + "0" * 400, "-1" + "0" * 400, "1e400", "NaN"],
                         ids=["past a float", "below a float", "infinite", "NaN"])
def test_a_token_lifetime_no_float_holds_fails_the_probe_never_raises_past_it(
        expires_in: str) -> None:
    """The token service (any https host a registry's 401 names) answers an
    ``expires_in`` of hundreds of digits: ``float()`` raises OverflowError, which the warm
    and express paths do not take for a miss. A failed probe; no token kept for ever."""
    from tests.threaded_http import Server, answer, path_of

    def respond(head: bytes) -> bytes:
        if path_of(head).startswith("/token"):
            return answer(200, {}, b'{"token":"T","expires_in":%s}' % expires_in.encode())
        if b"bearer t" in head.lower():
            return answer(200, {"Docker-Content-Digest": DIGEST})
        return answer(401, {"Www-Authenticate": f'Bearer realm="http://{server.host}/token"'})

    server = Server(respond)
    probe = RegistryProbe(server.host, "http", timeout=2.0)
    try:
        with pytest.raises(ProbeFailed, match="lifetime"):
            probe.manifest_digest("team/app", "v1")
    finally:
        probe.close()
        server.close()


@pytest.mark.parametrize("filler", ["a" * 30000, "a" + " " * 30000 + "b"],
                         ids=["a token run", "a whitespace run"])
def test_a_challenge_of_tens_of_kilobytes_fails_the_probe_at_once(filler: str) -> None:
    """A 401 whose WWW-Authenticate is one long run the parameter pattern cannot match:
    read as no challenge (a failed probe) at once, not parsed for tens of seconds of CPU
    after the answer's deadline has stopped counting."""
    from safedocker.oci.auth import parse_challenge
    from tests.threaded_http import Server, answer

    server = Server(lambda head: answer(401, {"Www-Authenticate": f"Bearer {filler}"}))
    probe = RegistryProbe(server.host, "http", timeout=2.0)
    started = time.monotonic()
    try:
        with pytest.raises(ProbeFailed, match="challenge"):
            probe.manifest_digest("team/app", "v1")
    finally:
        probe.close()
        server.close()
    assert time.monotonic() - started < 2.0
    assert parse_challenge(f'Bearer realm="https://auth.test/token",x="{filler}"') is None


def _full_listener() -> tuple[socket.socket, list[socket.socket]]:
    """A listener whose accept queue is full: the kernel drops further SYNs, so a
    connection to it waits, as to an address that never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    held = []
    for _ in range(8):
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.connect(listener.getsockname())
        except BlockingIOError:
            pass
        held.append(sock)
    time.sleep(0.2)
    return listener, held


def test_a_name_resolving_to_many_addresses_that_never_answer_is_given_up_on_in_its_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever answers the registry's DNS (its owner, or a spoofer on the path) lists
    twenty addresses that drop every SYN. The question's timeout bounds the connection
    as a whole (README: each question of the warm path 5 s), shared among the addresses
    as Go's dialer shares it, not given again to each one (twenty times the timeout)."""
    listener, held = _full_listener()
    address = listener.getsockname()
    many = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", address)] * 20
    monkeypatch.setattr(minihttp, "_addresses", lambda host, port, timeout: many)
    started = time.monotonic()
    try:
        with pytest.raises(OSError):
            tcp("registry.test", address[1], 0.5, tls=False)()
    finally:
        for sock in held:
            sock.close()
        listener.close()
    assert time.monotonic() - started < 1.5


def test_a_connection_made_on_a_later_address_keeps_the_whole_timeout_for_its_reads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The share of the timeout an address got to connect is not what its reads get."""
    from tests.threaded_http import Server, answer

    server = Server(lambda head: answer(200))
    listener, held = _full_listener()
    found = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", listener.getsockname()),
             (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", server.port))]
    monkeypatch.setattr(minihttp, "_addresses", lambda host, port, timeout: found)
    try:
        sock = tcp("registry.test", server.port, 3.0, tls=False)()
        assert sock.gettimeout() == 3.0
        sock.close()
    finally:
        for each in held:
            each.close()
        listener.close()
        server.close()


@pytest.mark.parametrize("second", [b"HTTP/1.1 200 OK\r\nX-Slow: ", b""],
                         ids=["dripped", "silent"])
def test_a_kept_alive_question_whose_answer_times_out_is_not_asked_again(
        second: bytes) -> None:
    """The kept-alive connection is sent again only when the server closed it before any
    byte of the answer: an answer dripped past its deadline, or none within the read
    timeout, is a failure at once (README: its answer 30 s), not a second full wait."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    connections: list[int] = []

    def run() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            connections.append(1)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                conn.recv(4096)
                conn.sendall(second)
                while second:
                    time.sleep(0.05)
                    conn.sendall(b"a")
                time.sleep(5)
            except OSError:
                return

    threading.Thread(target=run, daemon=True).start()
    port = listener.getsockname()[1]
    conn = Connection(tcp("127.0.0.1", port, 0.5, tls=False), f"127.0.0.1:{port}", total=1.0)
    try:
        assert conn.request("HEAD", "/1", body_max=0).status == 200
        started = time.monotonic()
        with pytest.raises(HttpFailed):
            conn.request("HEAD", "/2", body_max=0)
        assert time.monotonic() - started < 1.4
    finally:
        conn.close()
        listener.close()
    assert len(connections) == 1
