"""The warm path's HTTP/1.1 reader: lengths, chunks, HEAD, a kept-alive socket the server
closed, and caps — against a real socket served by a thread."""

from __future__ import annotations

import _socket
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING

import pytest

from safedocker._internal import minihttp
from safedocker._internal.minihttp import Connection, HttpFailed, tcp
from tests.threaded_http import Server, answer, serve_raw, trickle
from tests.tls_world import Authority

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path


@pytest.fixture
def timeout() -> Iterator[float]:
    yield 5.0


def test_a_body_is_read_by_its_length_then_the_next_answer_on_the_same_socket(
        timeout: float) -> None:
    port, seen = serve_raw([b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"])
    conn = Connection(tcp("127.0.0.1", port, timeout, tls=False), f"127.0.0.1:{port}")
    first = conn.request("GET", "/a", {"Accept": "x"}, body_max=100)
    second = conn.request("GET", "/b", body_max=100)
    assert (first.status, first.body, second.status) == (200, b"hello", 404)
    assert seen[0].startswith(b"GET /a HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"Accept: x\r\n" in seen[0]
    conn.close()


def test_chunked_bodies_are_joined_and_head_answers_have_none(timeout: float) -> None:
    port, _ = serve_raw([b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
                     b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n"
                     b"Docker-Content-Digest: sha256:1\r\n\r\n"])
    conn = Connection(tcp("127.0.0.1", port, timeout, tls=False), "h")
    assert conn.request("GET", "/", body_max=100).body == b"abcde"
    head = conn.request("HEAD", "/", body_max=100)
    assert (head.body, head.headers["docker-content-digest"]) == (b"", "sha256:1")
    conn.close()


def test_a_kept_alive_socket_the_server_closed_is_reopened_once(timeout: float) -> None:
    port, seen = serve_raw([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
                        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb"],
                       close_after_each=True)
    conn = Connection(tcp("127.0.0.1", port, timeout, tls=False), "h")
    assert conn.request("GET", "/1", body_max=10).body == b"a"
    assert conn.request("GET", "/2", body_max=10).body == b"b"
    assert len(seen) == 2
    conn.close()


def test_a_body_over_the_cap_and_a_non_http_answer_fail(timeout: float) -> None:
    port, _ = serve_raw([b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world"])
    with pytest.raises(HttpFailed):
        Connection(tcp("127.0.0.1", port, timeout, tls=False), "h").request(
            "GET", "/", body_max=10)
    port, _ = serve_raw([b"SSH-2.0-OpenSSH\r\n\r\n"])
    with pytest.raises(HttpFailed):
        Connection(tcp("127.0.0.1", port, timeout, tls=False), "h").request(
            "GET", "/", body_max=10)


@pytest.mark.parametrize("prefix", [
    b"HTTP/1.1 200 OK\r\nX-Slow: ",  # headers that never end
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",  # trailers that never end
], ids=["headers", "trailers"])
def test_a_server_that_answers_a_byte_at_a_time_is_given_up_on_within_the_total_deadline(
        prefix: bytes) -> None:
    """Each byte arrives within the read timeout; the whole answer never does. A hostile
    registry must not hold `docker run` on the warm path beyond one bounded wait."""
    import time

    port = trickle(prefix, b"a", 0.05)
    conn = Connection(tcp("127.0.0.1", port, 1.0, tls=False), f"127.0.0.1:{port}", total=1.5)
    started = time.monotonic()
    with pytest.raises(HttpFailed):
        conn.request("GET", "/", body_max=100)
    assert time.monotonic() - started < 4.0
    conn.close()


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture
def tls_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No CA from the environment, and a fresh process-wide context before and after."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.setattr(minihttp, "_TLS", {})
    yield


def _as_system_ca_dir(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    """``directory`` stands where OpenSSL's own CA directory is (no variable names one)."""
    monkeypatch.setattr(minihttp, "_system_ca_dir", lambda: str(directory))


def _trusted_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Server:
    """A TLS server for 127.0.0.1 whose CA stands in the system's CA directory."""
    authority = Authority("safedocker test ca")
    _as_system_ca_dir(monkeypatch, authority.hashed_dir(tmp_path / "certs"))
    return Server(_ok, tls=authority.server_context(tmp_path / "server", "127.0.0.1"))


def _https_head(host: str, port: int) -> int:
    conn = Connection(tcp(host, port, 5.0, tls=True), f"{host}:{port}")
    try:
        return conn.request("HEAD", "/v2/", body_max=0).status
    finally:
        conn.close()


def _ok(head: bytes) -> bytes:
    return answer(200)


def test_https_is_verified_against_the_hashed_ca_directory_read_lazily(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    server = _trusted_server(tmp_path, monkeypatch)
    context = minihttp.tls_context()
    assert context.cert_store_stats()["x509_ca"] == 0  # nothing parsed before it is needed
    assert _https_head("127.0.0.1", server.port) == 200
    assert context.cert_store_stats()["x509_ca"] == 1  # the one CA the chain needed
    assert minihttp.tls_context() is context  # one per process, every connection's


def test_ssl_cert_file_is_honoured_as_openssl_honours_it(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    authority = Authority("safedocker test ca")
    (tmp_path / "ca.pem").write_bytes(authority.pem())
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    server = Server(_ok, tls=authority.server_context(tmp_path / "server", "127.0.0.1"))
    assert _https_head("127.0.0.1", server.port) == 200


@pytest.mark.parametrize("served_for", ["127.0.0.2", "registry.other.test"])
def test_https_to_a_certificate_for_another_name_fails_the_request(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch,
        served_for: str) -> None:
    authority = Authority("safedocker test ca")
    _as_system_ca_dir(monkeypatch, authority.hashed_dir(tmp_path / "certs"))
    server = Server(_ok, tls=authority.server_context(tmp_path / "server", served_for))
    with pytest.raises(HttpFailed):
        _https_head("127.0.0.1", server.port)


def test_https_to_a_certificate_naming_the_host_only_as_its_common_name_fails_the_request(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # As docker (Go since 1.15) and the full path (urllib3 2) refuse it; ssl's default
    # context still falls back to the common name where a certificate has no SAN.
    authority = Authority("safedocker test ca")
    _as_system_ca_dir(monkeypatch, authority.hashed_dir(tmp_path / "certs"))
    named = Server(_ok, tls=authority.server_context(tmp_path / "san", "localhost"))
    assert _https_head("localhost", named.port) == 200  # the same name, in a SAN: taken
    server = Server(_ok, tls=authority.server_context(tmp_path / "cn", "localhost",
                                                      common_name_only=True))
    with pytest.raises(HttpFailed, match="[Hh]ostname mismatch"):
        _https_head("localhost", server.port)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_a_server_that_speaks_only_tls_1_0_or_1_1_is_refused(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    authority = Authority("safedocker test ca")
    _as_system_ca_dir(monkeypatch, authority.hashed_dir(tmp_path / "certs"))
    old = authority.server_context(tmp_path / "server", "127.0.0.1")
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 speaks TLS 1.0 and 1.1 only so
    old.minimum_version = old.maximum_version = getattr(ssl.TLSVersion, version)
    server = Server(_ok, tls=old)
    lax = ssl.create_default_context(cafile=tmp_path / "certs" / f"{authority.subject_hash()}.0")
    lax.set_ciphers("DEFAULT:@SECLEVEL=0")
    lax.minimum_version = ssl.TLSVersion.TLSv1
    with lax.wrap_socket(socket.create_connection(("127.0.0.1", server.port)),
                         server_hostname="127.0.0.1") as reached:  # it does speak it
        assert reached.version() == version.replace("_", ".")
    with pytest.raises(HttpFailed, match="protocol version"):
        _https_head("127.0.0.1", server.port)


def test_https_to_a_certificate_no_trusted_ca_signed_fails_the_request(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    trusted, other = Authority("safedocker test ca"), Authority("another authority")
    _as_system_ca_dir(monkeypatch, trusted.hashed_dir(tmp_path / "certs"))
    server = Server(_ok, tls=other.server_context(tmp_path / "server", "127.0.0.1"))
    with pytest.raises(HttpFailed):
        _https_head("127.0.0.1", server.port)


def test_a_ca_directory_without_hashed_names_falls_back_to_the_default_context(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "README").write_text("not a CA\n")
    _as_system_ca_dir(monkeypatch, tmp_path / "certs")
    assert not minihttp._hashed(str(tmp_path / "certs"))
    default = ssl.create_default_context()
    made = minihttp.tls_context()
    assert made.cert_store_stats() == default.cert_store_stats()
    assert made.verify_mode == ssl.CERT_REQUIRED and made.check_hostname


def test_a_ca_directory_named_by_ssl_cert_dir_adds_to_the_system_bundle_never_replaces_it(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenSSL reads SSL_CERT_DIR in place of its default directory, and its default bundle
    # still: a user who names a directory of their own CAs still reaches public registries.
    authority = Authority("safedocker test ca")
    monkeypatch.setenv("SSL_CERT_DIR", str(authority.hashed_dir(tmp_path / "certs")))
    server = Server(_ok, tls=authority.server_context(tmp_path / "server", "127.0.0.1"))
    assert _https_head("127.0.0.1", server.port) == 200  # the user's directory: honoured
    default = ssl.create_default_context()
    if default.cert_store_stats()["x509_ca"] == 0:
        pytest.skip("this host has no system CA bundle")
    assert minihttp.tls_context().cert_store_stats()["x509_ca"] >= \
        default.cert_store_stats()["x509_ca"]  # and the system bundle: still there


def test_the_tls_context_is_the_one_ssl_create_default_context_makes(
        tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Built from _ssl (ssl itself costs a hit ≈40 ms): every setting a check depends on is
    # ssl's own default context's, cipher by cipher.
    monkeypatch.setattr(minihttp, "_system_ca_dir", lambda: None)
    made, default = minihttp.tls_context(), ssl.create_default_context()
    default.hostname_checks_common_name = False  # stricter, as urllib3 and Go are
    for setting in ("verify_mode", "check_hostname", "minimum_version", "maximum_version",
                    "options", "verify_flags", "security_level", "protocol",
                    "post_handshake_auth", "_host_flags"):
        assert getattr(made, setting) == getattr(default, setting), setting
    assert made.verify_mode == ssl.CERT_REQUIRED and made.check_hostname
    assert [c["name"] for c in made.get_ciphers()] == [c["name"] for c in default.get_ciphers()]
    assert made.cert_store_stats() == default.cert_store_stats()


def test_https_to_an_expired_certificate_fails_the_request(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    authority = Authority("safedocker test ca")
    _as_system_ca_dir(monkeypatch, authority.hashed_dir(tmp_path / "certs"))
    server = Server(_ok, tls=authority.server_context(tmp_path / "server", "127.0.0.1",
                                                      expired=True))
    with pytest.raises(HttpFailed, match="expired"):
        _https_head("127.0.0.1", server.port)


def test_a_tls_server_that_never_answers_the_handshake_is_given_up_on_within_the_timeout(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    authority = Authority("safedocker test ca")
    _as_system_ca_dir(monkeypatch, authority.hashed_dir(tmp_path / "certs"))
    with socket.socket() as listener:  # accepts (the kernel's backlog) and never speaks
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(OSError, match="timed out"):
            tcp("127.0.0.1", port, 0.5, tls=True)()
        assert time.monotonic() - started < 3.0


def test_a_tls_connection_keeps_a_timeout(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # _ssl drives a socket with a timeout through non-blocking BIOs set at the handshake; a
    # blocking socket under them would wait without end.
    server = _trusted_server(tmp_path, monkeypatch)
    sock = tcp("127.0.0.1", server.port, 5.0, tls=True)()
    try:
        with pytest.raises(ValueError, match="timeout"):
            sock.settimeout(None)
        sock.settimeout(2.0)
        assert sock.gettimeout() == 2.0
    finally:
        sock.close()


def test_an_answer_read_until_the_close_ends_at_a_close_without_close_notify(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # As ssl's default suppress_ragged_eofs: most servers close TLS connections so.
    authority = Authority("safedocker test ca")
    _as_system_ca_dir(monkeypatch, authority.hashed_dir(tmp_path / "certs"))
    context = authority.server_context(tmp_path / "server", "127.0.0.1")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve_once() -> None:
        conn, _ = listener.accept()
        with context.wrap_socket(conn, server_side=True) as tls:
            while b"\r\n\r\n" not in tls.recv(4096):
                pass
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nthe whole body")
        listener.close()  # the TCP close, no TLS close_notify (unwrap was not called)

    threading.Thread(target=serve_once, daemon=True).start()
    conn = Connection(tcp("127.0.0.1", listener.getsockname()[1], 5.0, tls=True), "h")
    assert conn.request("GET", "/", body_max=1024).body == b"the whole body"


def test_an_https_question_loads_neither_ssl_nor_socket(tmp_path: Path) -> None:
    # ssl brings socket, base64, re and a dozen enums: ≈40 ms of a warm hit's ≈20.
    authority = Authority("safedocker test ca")
    (tmp_path / "ca.pem").write_bytes(authority.pem())
    server = Server(_ok, tls=authority.server_context(tmp_path / "server", "127.0.0.1"))
    script = (
        "import sys\n"
        "from safedocker._internal.minihttp import Connection, tcp\n"
        f"conn = Connection(tcp('127.0.0.1', {server.port}, 5.0, tls=True), 'h')\n"
        "assert conn.request('HEAD', '/v2/', body_max=0).status == 200\n"
        "print(sorted(m for m in ('ssl', 'socket', 'enum', 're', 'base64', 'selectors')"
        " if m in sys.modules))\n")
    env = {**os.environ, "SSL_CERT_FILE": str(tmp_path / "ca.pem")}
    env.pop("SSL_CERT_DIR", None)
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- name resolution ---------------------------------------------------------------------


def test_a_resolver_that_does_not_answer_is_given_up_on_within_the_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # glibc's resolver asks each nameserver for 5 s, twice: an unreachable DNS server must
    # not hold a warm hit longer than its own timeout.
    release = threading.Event()
    real = socket.getaddrinfo

    def stuck(host: str | bytes | None, port: object, *args: object) -> object:
        if host == b"registry.stuck.test":
            release.wait(30)
            raise OSError("released")
        return real(host, port, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_socket, "getaddrinfo", stuck)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match="no address from the resolver within 0.5 s"):
            tcp("registry.stuck.test", 5000, 0.5, tls=False)()
        assert time.monotonic() - started < 3.0
    finally:
        release.set()


def test_a_host_name_is_resolved_and_an_address_needs_no_resolver_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server(_ok)
    conn = Connection(tcp("localhost", server.port, 5.0, tls=False), f"localhost:{server.port}")
    try:
        assert conn.request("HEAD", "/v2/", body_max=0).status == 200
    finally:
        conn.close()
    started: list[object] = []
    import _thread

    real_start = _thread.start_new_thread

    def counting(function: Callable[..., object], args: tuple[object, ...]) -> int:
        started.append(function)
        return real_start(function, args)

    monkeypatch.setattr(_thread, "start_new_thread", counting)
    for address in ("127.0.0.1", "::1"):
        assert minihttp._numeric(address)
    assert not minihttp._numeric("localhost")
    sock = tcp("127.0.0.1", server.port, 5.0, tls=False)()
    sock.close()
    assert started == []


def test_a_resolver_failure_is_the_connection_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def unknown(*args: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(_socket, "getaddrinfo", unknown)
    with pytest.raises(HttpFailed, match="not known"):
        Connection(tcp("registry.nowhere.test", 443, 1.0, tls=False), "h").request(
            "HEAD", "/v2/", body_max=0)


def test_a_closed_tls_connection_reads_nothing_from_the_socket_that_reuses_its_number(
        tmp_path: Path, tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # _ssl keeps the descriptor's number, not the socket: after close it would read the
    # TLS records of whatever socket the process opens under that number next (ssl's
    # SSLSocket drops its SSL object at close, and its recv then fails).
    server = _trusted_server(tmp_path, monkeypatch)
    sock = tcp("127.0.0.1", server.port, 5.0, tls=True)()
    number = sock.fileno()
    sock.close()
    mine, peer = socket.socketpair()  # the lowest free numbers: the one just freed
    if number == peer.fileno():
        mine, peer = peer, mine
    try:
        if mine.fileno() != number:
            pytest.skip("another thread took the freed descriptor number first")
        record = b"\x17\x03\x03\x00\x05hello"  # application data, as a TLS peer sends it
        peer.sendall(record)
        with pytest.raises(OSError):
            sock.recv(100)
        with pytest.raises(OSError):
            sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        mine.settimeout(1.0)
        assert mine.recv(100) == record  # still there for its own reader
    finally:
        mine.close()
        peer.close()


def test_a_python_without_ssl_fails_an_https_request_as_an_unreachable_registry_does(
        tls_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # An ImportError would escape the warm path's handling (OSError, ValueError): a
    # traceback where a miss belongs.
    monkeypatch.setitem(sys.modules, "_ssl", None)  # import _ssl raises ImportError
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with pytest.raises(HttpFailed, match="TLS"):
            _https_head("127.0.0.1", listener.getsockname()[1])


def test_a_resolver_thread_that_cannot_start_is_the_connection_failure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # _thread.start_new_thread raises RuntimeError when the process may start no more
    # threads (a container's pids limit): it escaped the warm path's handling of a miss
    # (OSError, ValueError), a traceback where the full path belongs.
    import _thread

    def refused(function: Callable[..., object], args: tuple[object, ...]) -> int:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(_thread, "start_new_thread", refused)
    conn = Connection(tcp("registry.threads.test", 5000, 1.0, tls=False),
                      "registry.threads.test:5000")
    try:
        with pytest.raises(HttpFailed, match="start new thread"):
            conn.request("HEAD", "/v2/", body_max=0)
    finally:
        conn.close()
