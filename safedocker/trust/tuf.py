"""The public-good trusted root: embedded in sigstore-python, refreshed by its TUF updater.

# private-import: adapter
sigstore-python offers neither publicly: its TUF client is
``sigstore._internal.tuf.TrustUpdater`` and its embedded root lies in the package's
``_store`` data. This module is the one place that reaches into either, so a change
there breaks here and in tests/unit/trust/test_tuf.py (which checks what is used),
nowhere else. The
updater verifies the metadata chain from the root.json embedded in sigstore-python
before it hands out the target; its offline mode is never used. Its network waits are
bounded here as a whole (:data:`TUF_TIMEOUT`), like every registry wait.
"""

from __future__ import annotations

from pathlib import Path

from safedocker._internal.deadline import call_within
from safedocker.errors import ConfigError, RegistryUnavailable

EMBEDDED_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"
TUF_TIMEOUT = 120.0
_HINT = "check the network; the current trust root stays in use"


def fetch_trusted_root(tuf_url: str, *, timeout: float = TUF_TIMEOUT) -> bytes:
    """The trusted_root.json target of the TUF repository at ``tuf_url``, verified by TUF.

    RegistryUnavailable (69) when it cannot be had in ``timeout`` seconds or at all.
    """
    try:
        from sigstore._internal.tuf import TrustUpdater  # private-import: adapter
        from sigstore.errors import Error as SigstoreError
    except ImportError as e:  # pragma: no cover - sigstore is a dependency
        raise ConfigError("sigstore-python is not installed", why=str(e)) from e

    def fetch() -> bytes:
        updater = TrustUpdater(tuf_url, offline=False)
        return Path(updater.get_trusted_root_path()).read_bytes()

    try:
        return call_within(timeout, fetch, name="safe-docker TUF")
    except TimeoutError as e:
        raise RegistryUnavailable(f"refreshing the Sigstore trust root from {tuf_url} timed out",
                                  why=f"no answer within {timeout:g} s", hint=_HINT) from e
    except (SigstoreError, OSError) as e:
        raise RegistryUnavailable(
            f"cannot refresh the Sigstore trust root from {tuf_url}",
            why="the TUF repository could not be read or did not verify", hint=_HINT,
        ) from e


def embedded_trusted_root(tuf_url: str = EMBEDDED_TUF_URL) -> bytes:
    """The ``trusted_root.json`` sigstore-python ships for ``tuf_url`` (OSError if none)."""
    from importlib import resources
    from urllib.parse import quote

    store = resources.files("sigstore") / "_store" / quote(tuf_url, safe="")
    return (store / "trusted_root.json").read_bytes()
