"""The TUF adapter: the one import of sigstore-python's private TUF client, checked here.

If sigstore-python changes ``sigstore._internal.tuf.TrustUpdater``, these tests fail
before `safe-docker trust-root update` does.
"""

from __future__ import annotations

import inspect
import time
from typing import TYPE_CHECKING

import pytest

from safedocker.errors import ExitCode, RegistryUnavailable
from safedocker.trust import tuf

if TYPE_CHECKING:
    from pathlib import Path


def test_the_private_interface_the_adapter_uses_is_there() -> None:
    from sigstore._internal.tuf import TrustUpdater  # private-import: adapter (its test)

    parameters = inspect.signature(TrustUpdater).parameters
    assert list(parameters)[:2] == ["url", "offline"]
    assert callable(TrustUpdater.get_trusted_root_path)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TUF metadata and targets go under a throw-away home."""
    for variable in ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.setenv(variable, str(tmp_path / variable.lower()))
    return tmp_path


def test_a_repository_it_cannot_trust_is_exit_69_in_our_words(home: Path) -> None:
    # No embedded root.json for this URL and nothing local: the updater must refuse.
    with pytest.raises(RegistryUnavailable) as err:
        tuf.fetch_trusted_root("http://127.0.0.1:9/tuf", timeout=30)
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert "cannot refresh the Sigstore trust root" in err.value.line()
    assert "Error" not in err.value.line()  # no class names


def test_an_updater_that_never_finishes_times_out(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import sigstore._internal.tuf as private  # private-import: adapter (its test)

    class Stuck:
        def __init__(self, url: str, offline: bool = False) -> None:
            time.sleep(30)

    monkeypatch.setattr(private, "TrustUpdater", Stuck)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable, match="timed out"):
        tuf.fetch_trusted_root("https://tuf-repo-cdn.sigstore.dev", timeout=0.5)
    assert time.monotonic() - started < 5


def test_the_embedded_public_good_root_is_where_the_adapter_looks() -> None:
    from safedocker.trust.roots import parse_trust_root

    root = parse_trust_root(tuf.embedded_trusted_root(), name="default", source="embedded")
    assert root.certificate_authorities and root.tlogs and root.timestamp_authorities
    assert any(log.key.algorithm == "ed25519" for log in root.tlogs)  # Rekor v2: sigstore>=4.2
    with pytest.raises(OSError):
        tuf.embedded_trusted_root("https://tuf.invalid")
