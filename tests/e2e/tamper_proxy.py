"""A lying registry for the end-to-end tests: an HTTP proxy on loopback that alters manifests.

It forwards every request to the real registry. While ``mode`` is not ``"honest"`` it
changes the body of image-manifest GETs (a trailing newline: still valid JSON, different
bytes) and lies about it:

* ``"claim-original"``: keeps the registry's ``Docker-Content-Digest`` header, which
  names the digest of the original bytes, not of what is served;
* ``"consistent"``: claims the digest of the altered bytes, serves them under that digest
  too, and answers ``sha256-<altered>.sig`` with the original image's signature, so
  that the signature names a digest which is not the hash of what is served.

Signature manifests (``….sig`` tags) and blobs pass through unchanged.
"""

from __future__ import annotations

import hashlib
import http.client
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

_MANIFEST_PATH = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<ref>[^/?]+)$")
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                         "proxy-connection", "te", "trailer", "upgrade"})
MODES = ("honest", "claim-original", "consistent")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class TamperProxy:
    """``with TamperProxy("127.0.0.1:5000") as proxy: proxy.registry`` → "127.0.0.1:PORT"."""

    def __init__(self, upstream: str, mode: str = "honest") -> None:
        self.upstream = upstream
        self.mode = mode
        # altered digest hex -> original digest hex, learned from what we served
        self.altered: dict[str, str] = {}
        self.tampered_responses = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> TamperProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> TamperProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling ------------------------------------------------------------------

    def _upstream_path(self, path: str) -> str:
        """Map requests for altered digests (and their .sig tags) back to the originals."""
        match = _MANIFEST_PATH.match(path)
        if not match or self.mode != "consistent":
            return path
        ref = match["ref"]
        for altered, original in self.altered.items():
            if ref == f"sha256:{altered}":
                return path.replace(ref, f"sha256:{original}")
            if ref == f"sha256-{altered}.sig":
                return path.replace(ref, f"sha256-{original}.sig")
        return path

    def _should_alter(self, method: str, path: str, status: int) -> bool:
        match = _MANIFEST_PATH.match(path)
        return (
            self.mode != "honest"
            and method in ("GET", "HEAD")
            and status == 200
            and match is not None
            and not match["ref"].endswith(".sig")
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version: ClassVar[str] = "tamper-proxy"  # type: ignore[misc]

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path, _, query = self.path.partition("?")
                upstream_path = proxy._upstream_path(path)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in _HOP_BY_HOP and k.lower() != "host"}
                conn = http.client.HTTPConnection(proxy.upstream, timeout=30)
                try:
                    conn.request(self.command, upstream_path + (f"?{query}" if query else ""),
                                 body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    out_headers = [(k, v) for k, v in resp.getheaders()
                                   if k.lower() not in _HOP_BY_HOP]
                    status = resp.status
                finally:
                    conn.close()
                if self.command == "HEAD" and proxy._should_alter("HEAD", path, status):
                    # HEAD has no body to alter; answer with what GET would claim.
                    proxy_get = http.client.HTTPConnection(proxy.upstream, timeout=30)
                    try:
                        proxy_get.request("GET", upstream_path, headers=headers)
                        data_for_head = proxy_get.getresponse().read()
                    finally:
                        proxy_get.close()
                    out_headers = self._tamper(path, data_for_head, out_headers)[1]
                elif proxy._should_alter(self.command, path, status):
                    data, out_headers = self._tamper(path, data, out_headers)
                    proxy.tampered_responses += 1
                self.send_response(status)
                for key, value in out_headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _tamper(self, path: str, data: bytes,
                        headers: list[tuple[str, str]]) -> tuple[bytes, list[tuple[str, str]]]:
                altered = data + b"\n"
                original = _digest(data)
                claimed = original
                if proxy.mode == "consistent":
                    claimed = _digest(altered)
                    proxy.altered[claimed.split(":", 1)[1]] = original.split(":", 1)[1]
                headers = [(k, v) for k, v in headers if k.lower() != "docker-content-digest"]
                headers.append(("Docker-Content-Digest", claimed))
                return altered, headers

            do_GET = _forward  # noqa: N815
            do_HEAD = _forward  # noqa: N815
            do_PUT = _forward  # noqa: N815
            do_POST = _forward  # noqa: N815
            do_PATCH = _forward  # noqa: N815
            do_DELETE = _forward  # noqa: N815

        return Handler
