"""Hostile registries on loopback for the adversarial tests (one repository ``ns/app``).

* ``drip="headers"``: every answer comes one byte at a time, ``every`` seconds apart,
  status line and headers included (a socket read timeout never trips);
* ``drip="body"``: headers at once, then the body one byte at a time;
* ``referrer_pages=N``: a valid image manifest, no cosign signature, and a referrers
  API whose every page (``page_bytes`` of descriptors) links to the next (attack N9).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_LAYER = b"x" * 10
_CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {
    "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(_LAYER).hexdigest()]}}).encode()
MANIFEST = json.dumps({
    "schemaVersion": 2, "mediaType": OCI_MANIFEST,
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + hashlib.sha256(_CONFIG).hexdigest(), "size": len(_CONFIG)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": "sha256:" + hashlib.sha256(_LAYER).hexdigest(), "size": len(_LAYER)}],
}).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()


def _page(size: int) -> bytes:
    items, total, i = [], 0, 0
    while total < size - 4096:
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        item = (f'{{"mediaType":"{OCI_MANIFEST}","digest":"sha256:{digest}","size":1,'
                f'"artifactType":"application/x"}}')
        items.append(item)
        total += len(item) + 1
        i += 1
    return (f'{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":['
            + ",".join(items) + "]}").encode()


class HostileRegistry:
    """``with HostileRegistry(drip="body") as hostile: hostile.registry`` → 127.0.0.1:PORT."""

    def __init__(self, *, drip: str | None = None, every: float = 2.0,
                 page_bytes: int = 4 * 1024 * 1024) -> None:
        self.drip = drip
        self.every = every
        self.page = _page(page_bytes) if drip is None else b""
        self.requests: list[str] = []
        self.stopped = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.registry = f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileRegistry:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _answer(self, status: int, body: bytes, ctype: str,
                        extra: dict[str, str] | None = None) -> None:
                head = [f"HTTP/1.1 {status} X", f"Content-Type: {ctype}",
                        f"Content-Length: {len(body)}",
                        *(f"{k}: {v}" for k, v in (extra or {}).items())]
                raw = ("\r\n".join(head) + "\r\n\r\n").encode()
                if hostile.drip == "headers":
                    self._drip(raw + body)
                elif hostile.drip == "body":
                    self.wfile.write(raw)
                    self.wfile.flush()
                    self._drip(body)
                else:
                    self.wfile.write(raw + body)

            def _drip(self, data: bytes) -> None:
                for i in range(len(data)):
                    if hostile.stopped.wait(hostile.every):
                        return
                    self.wfile.write(data[i:i + 1])
                    self.wfile.flush()

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hostile.requests.append(self.path)
                path = self.path
                try:
                    if path in ("/v2/ns/app/manifests/v1", f"/v2/ns/app/manifests/{DIGEST}"):
                        self._answer(200, MANIFEST, OCI_MANIFEST,
                                     {"Docker-Content-Digest": DIGEST})
                    elif "/referrers/" in path and hostile.page:
                        number = int(path.rpartition("page=")[2]) if "page=" in path else 0
                        base = path.split("?")[0]
                        self._answer(200, hostile.page, OCI_INDEX,
                                     {"Link": f'<{base}?page={number + 1}>; rel="next"'})
                    else:
                        self._answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}',
                                     "application/json")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should

            do_HEAD = do_GET

        return Handler


def _accepts(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def wait_until_up(registry: str, seconds: float = 5.0) -> None:
    host, _, port = registry.partition(":")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _accepts(host, int(port)):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{registry} did not come up")
