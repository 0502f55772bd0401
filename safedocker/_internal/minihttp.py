"""A small HTTP/1.1 client over one kept-alive socket, for the warm path's few questions.

``http.client`` imports the ``email`` package (a dozen modules) to parse headers; the warm
path asks three or four questions per run and must start as fast as the interpreter, so
it speaks the protocol itself: a request line and headers out, then a status line,
headers and a body read back with a cap on each (Content-Length, chunked, or until the
server closes). Connections use ``_socket``, the C module :mod:`socket` wraps: the wrapper
adds enums and ``selectors`` that cost the warm path more than its requests. TLS is
``_ssl``, the C module :mod:`ssl` wraps, loaded only for an https origin: ``ssl`` itself
brings :mod:`socket`, ``base64``, ``re`` and a dozen enums (≈40 ms on a small machine,
more than the rest of a warm hit; ``_ssl`` alone ≈12 ms). Its context is the one
``ssl.create_default_context()`` makes, but that it reads a host name from a SAN only
(as docker and urllib3), made once per process and set of a registry's own CAs
(:func:`tls_context`), and each connection is driven as ``ssl.SSLSocket`` drives it
(:class:`TlsSocket`). Standard library only.
"""

from __future__ import annotations

import _socket
import os
import sys
import time

from safedocker._internal.lean import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _ssl
    from collections.abc import Callable, Mapping, Sequence
    from typing import Protocol

    class Socket(Protocol):
        """What a connector gives: ``_socket.socket``, or :class:`TlsSocket` over one."""

        def gettimeout(self) -> float | None: ...
        def settimeout(self, timeout: float | None, /) -> None: ...
        def sendall(self, data: bytes, /) -> None: ...
        def recv(self, size: int, /) -> bytes: ...
        def fileno(self) -> int: ...
        def close(self) -> None: ...

    class _TlsObject(Protocol):
        """``_ssl._SSLSocket``, which typeshed leaves out."""

        def do_handshake(self) -> None: ...
        def read(self, size: int, /) -> bytes: ...
        def write(self, data: memoryview, /) -> int: ...

    _Addresses = list[tuple[int, int, int, str, tuple[str, int] | tuple[str, int, int, int]
                            | tuple[int, bytes]]]

HEADERS_MAX = 64 * 1024
# One request and its whole answer: a read timeout bounds each recv, not a server that
# sends a byte just inside it, forever.
TOTAL_TIMEOUT = 30.0


# RFC 3986's unreserved characters: what urllib.parse.quote never escapes.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str, safe: str = "") -> str:
    """``urllib.parse.quote(text, safe)`` (UTF-8, upper-case escapes) without importing
    urllib.parse (its ipaddress and unicodedata cost the warm path more than its work)."""
    keep = _UNRESERVED | frozenset(safe.encode("ascii"))
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in text.encode("utf-8"))


def form(fields: Mapping[str, str]) -> str:
    """A query string as ``urllib.parse.urlencode`` writes it (``quote_plus``: space is +)."""
    return "&".join(f"{quote(k, ' ').replace(' ', '+')}={quote(v, ' ').replace(' ', '+')}"
                    for k, v in fields.items())


class HttpFailed(Exception):
    """The connection failed or the answer is not HTTP/1.x we read."""


class _Closed(HttpFailed):
    """The socket was closed or reset before any byte of the answer came: on a kept-alive
    one, the server let it go meanwhile (the one failure a request is sent again for; a
    timeout, or an answer that stopped halfway, is not)."""


class Answer(NamedTuple):  # not a dataclass: that module costs the warm path too much
    status: int
    headers: Mapping[str, str]  # lower-case names; the last of repeated headers
    body: bytes


def tcp(host: str, port: int, timeout: float, *, tls: bool,
        cas: tuple[str, ...] = ()) -> Callable[[], Socket]:
    """A connector for ``host:port``, over TLS (certificates checked) when ``tls``: against
    the system's CAs and the PEM files ``cas`` (the registry's own, from docker's certs.d).
    """
    def connect() -> Socket:
        if tls:
            return TlsSocket(_connect_tcp(host, port, timeout), host, cas)
        return _connect_tcp(host, port, timeout)
    return connect


class TlsSocket:
    """A TLS client connection over a connected ``_socket.socket``, driven as
    ``ssl.SSLSocket`` drives one in blocking mode: the socket's timeout bounds each step
    (set before the handshake, as ``_ssl`` reads it then), ``_ssl`` checks the chain
    and the host name in the handshake (the context asks for both), and a close without
    TLS's close_notify reads as the end, as ``ssl``'s default ``suppress_ragged_eofs``.
    """

    def __init__(self, raw: _socket.socket, host: str, cas: tuple[str, ...] = ()) -> None:
        try:
            import _ssl
        except ImportError as e:  # a Python built without OpenSSL: a miss, not a crash
            raw.close()
            raise OSError("this Python has no TLS (no _ssl module)") from e
        if not host.isascii():  # a reference's registry is ASCII; ssl would IDNA-encode
            raw.close()
            raise OSError(f"{host!r}: not an ASCII host name")
        self._raw = raw  # _ssl holds only a weak reference to it
        try:
            tls: _TlsObject = tls_context(cas)._wrap_socket(  # type: ignore[attr-defined]
                raw, False, host)
            tls.do_handshake()
        except BaseException:
            raw.close()
            raise
        self._tls: _TlsObject | None = tls
        self._eof = _ssl.SSLEOFError

    def gettimeout(self) -> float | None:
        return self._raw.gettimeout()

    def settimeout(self, timeout: float | None) -> None:
        if timeout is None:  # blocking: _ssl set its BIOs for a socket with a timeout
            raise ValueError("a TLS connection keeps a timeout")
        self._raw.settimeout(timeout)

    def _open(self) -> _TlsObject:
        # _ssl keeps the descriptor's number: once closed, that number may be another
        # socket's, whose bytes a read would take (ssl's SSLSocket drops its object too).
        if self._tls is None:
            raise OSError(_EBADF, "the TLS connection is closed")
        return self._tls

    def sendall(self, data: bytes) -> None:
        tls, view = self._open(), memoryview(data)
        while view:
            view = view[tls.write(view):]

    def recv(self, size: int) -> bytes:
        try:
            return self._open().read(size)
        except self._eof:
            return b""

    def fileno(self) -> int:
        return self._raw.fileno()

    def close(self) -> None:
        self._tls = None
        self._raw.close()


_EBADF = 9  # errno.EBADF, the same on Linux, macOS and the BSDs


_TLS: dict[tuple[str, ...], _ssl._SSLContext] = {}  # by extra CAs (see tls_context)


def tls_context(cas: tuple[str, ...] = ()) -> _ssl._SSLContext:
    """The client context every TLS connection of this process to a registry trusting
    ``cas`` besides the system's CAs shares (made once for each such tuple): the one
    ``ssl.create_default_context()`` makes (certificates and host names checked, TLS 1.2
    at least, ssl's ciphers, on Python 3.13 and later its strict X.509 flags; no
    SSLKEYLOGFILE), but for a host name read from a SAN only (never from the common
    name, as Go and urllib3 read it), against the system's CAs as OpenSSL finds them
    (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` honoured).

    Made once: the default context parses the whole CA bundle first (≈50 ms on a small
    machine, more than the rest of a warm hit), and a hit's side-by-side questions each
    open a connection. Where neither variable is set and the system's CA directory is
    hashed (update-ca-certificates and c_rehash make it so; on Debian and Ubuntu it holds
    the bundle's CAs), only that directory is given: OpenSSL then reads the one CA a chain
    needs, when it needs it. ``SSL_CERT_DIR`` is not read that way: OpenSSL reads the
    directory it names *with* the system bundle, so such a directory alone would lose the
    bundle's CAs. The directory alone trusts what the default context (bundle and
    directory) trusts, but for a directory CA whose subject a different bundle CA also
    has (the bundle's shadows it there): on a host whose directory mirrors its bundle
    there is none. A chain to a CA only the bundle holds fails: a miss the full path then
    answers."""
    found = _TLS.get(cas)
    if found is None:
        import _ssl

        found = _ssl._SSLContext(_ssl.PROTOCOL_TLS_CLIENT)
        configure_client(found, cas)
        _TLS[cas] = found
    return found


def configure_client(context: _ssl._SSLContext, cas: Sequence[str] = ()) -> None:
    """Make ``context`` (``PROTOCOL_TLS_CLIENT``; ssl's SSLContext is one too: the full path
    configures its own so) what :func:`tls_context` describes, trusting the PEM files
    ``cas`` besides the system's CAs. A CA file that cannot be read raises OSError, as
    docker fails a registry whose certs.d it cannot read; one that holds no certificate
    OpenSSL takes is skipped, as docker skips it."""
    import _ssl

    # ssl.SSLContext(PROTOCOL_TLS_CLIENT) is this object; create_default_context then asks
    # for what this protocol already sets, said again here so that no interpreter's
    # default can leave a check out.
    context.verify_mode = _ssl.CERT_REQUIRED
    context.check_hostname = True
    context.minimum_version = max(context.minimum_version, _TLS_1_2)
    if sys.version_info >= (3, 13):
        context.verify_flags |= _ssl.VERIFY_X509_PARTIAL_CHAIN | _ssl.VERIFY_X509_STRICT
    # The one setting not ssl's: a certificate without a SAN is not matched by its common
    # name (hostname_checks_common_name = False), as docker (Go) and urllib3 refuse it.
    context._host_flags |= _ssl.HOSTFLAG_NEVER_CHECK_SUBJECT  # type: ignore[attr-defined]
    capath = _system_ca_dir()
    if capath and _hashed(capath):
        context.load_verify_locations(None, capath)
    else:
        context.set_default_verify_paths()  # load_default_certs, off Windows
    for ca in cas:
        try:
            context.load_verify_locations(ca)
        except _ssl.SSLError:  # noqa: PERF203 - one file at a time, a few at most
            # What is not PEM certificates adds nothing, as docker's AppendCertsFromPEM
            # skips it; a file that cannot be read at all (OSError) fails, as for docker.
            continue


_TLS_1_2 = 0x0303  # ssl.TLSVersion.TLSv1_2


def _system_ca_dir() -> str | None:
    """OpenSSL's own CA directory where no variable names a bundle or a directory of the
    user's (either one, and the default context reads the system bundle as well)."""
    import _ssl

    cafile_env, _, capath_env, capath = _ssl.get_default_verify_paths()
    if cafile_env in os.environ or capath_env in os.environ:
        return None
    return capath if os.path.isdir(capath) else None  # as ssl.get_default_verify_paths


_HEX = frozenset("0123456789abcdef")


def _hashed(directory: str) -> bool:
    """Whether ``directory`` holds a CA under its subject hash (``5ad8a5d6.0``)."""
    try:
        with os.scandir(directory) as entries:
            return any(len(e.name) >= 10 and e.name[8] == "." and e.name[9:].isdigit()
                       and _HEX.issuperset(e.name[:8]) for e in entries)
    except OSError:
        return False


def _addresses(host: str, port: int, timeout: float) -> _Addresses:
    """``getaddrinfo`` within ``timeout``: the resolver has no deadline of its own (glibc's
    asks each nameserver for 5 s, twice, by default), so a host name is resolved on a
    thread of its own and given up on when ``timeout`` passes (the thread ends with the
    process). An address written as one needs no resolver and no thread."""
    # bytes: a str host would load the idna codec (three modules) for an ASCII name
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    if _numeric(host):
        return _socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM)
    import _thread

    answered = _thread.allocate_lock()
    answered.acquire()
    found: list[_Addresses | BaseException] = []

    def resolve() -> None:
        try:
            found.append(_socket.getaddrinfo(name, port, 0, _socket.SOCK_STREAM))
        except BaseException as e:  # noqa: BLE001 - handed to the caller, which raises it
            found.append(e)
        finally:
            answered.release()

    try:
        _thread.start_new_thread(resolve, ())
    except RuntimeError as e:  # no more threads for this process (a pids limit): a miss
        raise OSError(f"{host}: cannot resolve it ({e})") from e
    if not answered.acquire(timeout=timeout):
        raise TimeoutError(f"{host}: no address from the resolver within {timeout:g} s")
    if isinstance(found[0], BaseException):
        raise found[0]
    return found[0]


def _numeric(host: str) -> bool:
    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return True
    return False


class _TcpSocket(_socket.socket):
    """``_socket.socket`` that can be weakly referenced, as ``_ssl`` references the socket
    it wraps (socket.socket, a Python subclass, can be; the C type alone cannot)."""

    __slots__ = ("__weakref__",)


# Go's dialer gives each address at least this much of what is left (all of it, when
# less is left): an unreachable IPv6 address first must not leave the IPv4 one none.
_ADDRESS_MIN = 2.0


def _connect_tcp(host: str, port: int, timeout: float) -> _socket.socket:
    """``socket.create_connection``: each address getaddrinfo gives, in order, until one
    connects; the last failure otherwise. ``timeout`` bounds the whole, the name's
    resolution included, and is shared among the addresses as Go's dialer shares it
    (``partialDeadline``): a name listing many addresses that never answer does not
    wait ``timeout`` for each."""
    deadline = time.monotonic() + timeout
    failure: OSError = OSError(f"{host}: no address")
    found = _addresses(host, port, timeout)
    for index, (family, kind, proto, _, address) in enumerate(found):
        left = deadline - time.monotonic()
        if left <= 0:
            failure = TimeoutError(f"{host}: not connected within {timeout:g} s")
            break
        sock = _TcpSocket(family, kind, proto)
        sock.settimeout(max(left / (len(found) - index), min(_ADDRESS_MIN, left)))
        try:
            sock.connect(address)
        except OSError as e:
            sock.close()
            failure = e
            continue
        except BaseException:
            sock.close()
            raise
        sock.settimeout(timeout)  # each read (and the TLS handshake) gets the whole of it
        return sock
    raise failure


def unix(path: str, timeout: float) -> Callable[[], Socket]:
    def connect() -> Socket:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        return sock
    return connect


_LINE_BREAKS = ("\r", "\n", "\0")


def _digits(text: str, most: int) -> bool:
    """Whether ``text`` is 1 to ``most`` ASCII digits: ``str.isdigit`` takes ``²`` too,
    which ``int`` refuses (a ValueError, not an answer HTTP can give)."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


class Connection:
    """Requests to one origin on one socket, reconnecting when the server closed it."""

    def __init__(self, connect: Callable[[], Socket], host: str, *,
                 total: float = TOTAL_TIMEOUT) -> None:
        self._connect = connect
        self.host = host
        self.total = total
        self._sock: Socket | None = None
        self._buffer = b""
        self._read_timeout: float | None = None
        self._deadline = 0.0
        self._got = 0  # bytes of the current answer received

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""

    def request(self, method: str, target: str, headers: Mapping[str, str] | None = None,
                *, body_max: int) -> Answer:
        """One request and its answer; a kept-alive socket the server closed meanwhile is
        reconnected once."""
        fresh = self._sock is None
        try:
            self.send(method, target, headers)
            return self.receive(method, body_max=body_max)
        except _Closed:
            if fresh:
                raise
            self.close()
            self.send(method, target, headers)  # the kept-alive one died: once, afresh
            return self.receive(method, body_max=body_max)

    def send(self, method: str, target: str, headers: Mapping[str, str] | None = None
             ) -> None:
        """Send a request, connecting first when needed; :meth:`receive` reads its answer
        (so questions to several servers can be asked before any answer is read). The
        deadline for the whole answer starts here."""
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        # A value from elsewhere (a token service's token) with a line break would add
        # headers or a whole request, whose answer the next one would read as its own.
        if any(bad in line for line in lines for bad in _LINE_BREAKS):
            raise HttpFailed("a request line or header holds a line break")
        if method in ("POST", "PUT"):
            lines.append("Content-Length: 0")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._deadline = time.monotonic() + self.total
        self._got = len(self._buffer)
        try:
            if self._sock is None:
                self._sock = self._connect()
                self._read_timeout = self._sock.gettimeout()
            self._sock.sendall(data)
        except OSError as e:
            self.close()
            raise (_Closed if isinstance(e, ConnectionError) else HttpFailed)(str(e)) from e

    def receive(self, method: str, *, body_max: int) -> Answer:
        """The answer to the request :meth:`send` sent (``method`` as sent)."""
        if self._sock is None:
            raise HttpFailed("no request was sent")
        try:
            answer = self._read(method, body_max)
        except (OSError, HttpFailed) as e:
            closed = self._got == 0 and isinstance(e, (_Closed, ConnectionError))
            self.close()
            raise (_Closed if closed else HttpFailed)(str(e)) from e
        if answer.headers.get("connection", "").lower() == "close":
            self.close()
        return answer

    def _fill(self) -> None:
        assert self._sock is not None  # noqa: S101 - set by request()
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise HttpFailed(f"no whole answer within {self.total:g} s")
        read = self._read_timeout
        self._sock.settimeout(left if read is None else min(read, left))
        chunk = self._sock.recv(65536)
        if not chunk:
            raise _Closed("connection closed")
        self._got += len(chunk)
        self._buffer += chunk

    def _read(self, method: str, body_max: int) -> Answer:
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > HEADERS_MAX:
                raise HttpFailed("headers too large")
            self._fill()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not _digits(parts[1], 3):
            raise HttpFailed("not an HTTP/1.x answer")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return Answer(status, headers, b"")
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return Answer(status, headers, self._chunked(body_max))
        length = headers.get("content-length")
        if length is not None:
            if not _digits(length, 18) or int(length) > body_max:
                raise HttpFailed("body too large")
            return Answer(status, headers, self._exactly(int(length)))
        body = self._until_closed(body_max)
        return Answer(status, headers, body)

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        body, self._buffer = self._buffer[:size], self._buffer[size:]
        return body

    def _chunked(self, body_max: int) -> bytes:
        body = b""
        while True:
            while b"\r\n" not in self._buffer:
                if len(self._buffer) > HEADERS_MAX:
                    raise HttpFailed("bad chunk")
                self._fill()
            line, _, self._buffer = self._buffer.partition(b"\r\n")
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError as e:
                raise HttpFailed("bad chunk size") from e
            if size == 0:
                self._skip_trailers()
                return body
            if len(body) + size > body_max:
                raise HttpFailed("body too large")
            body += self._exactly(size + 2)[:size]

    def _skip_trailers(self) -> None:
        """Trailers are not used: read up to the empty line that ends them, capped as
        headers are."""
        seen = 0
        while True:
            while b"\r\n" not in self._buffer:
                if len(self._buffer) > HEADERS_MAX:
                    raise HttpFailed("trailers too large")
                self._fill()
            trailer, _, self._buffer = self._buffer.partition(b"\r\n")
            seen += len(trailer) + 2
            if not trailer:
                return
            if seen > HEADERS_MAX:
                raise HttpFailed("trailers too large")

    def _until_closed(self, body_max: int) -> bytes:
        try:
            while len(self._buffer) <= body_max:
                self._fill()
        except HttpFailed:
            body, self._buffer = self._buffer, b""
            self.close()
            return body
        raise HttpFailed("body too large")
