"""`keys add https://…` has an end: a server that drips its answer cannot hold it."""

from __future__ import annotations

import time

import pytest
import requests

from safedocker.errors import ExitCode, RegistryUnavailable
from safedocker.trust import keystore


def test_a_key_url_that_never_finishes_answering_times_out_with_exit_69(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def stalled(*args: object, **kwargs: object) -> object:
        time.sleep(30)  # each byte in time for the socket's read timeout, never done
        raise AssertionError("unreachable")

    monkeypatch.setattr(requests, "get", stalled)
    monkeypatch.setattr(keystore, "FETCH_DEADLINE", 0.5)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailable) as err:
        keystore.fetch_key_text("https://keys.example/cosign.pub")
    assert time.monotonic() - started < 5
    assert err.value.exit_code == ExitCode.UNAVAILABLE
    assert "timed out" in err.value.line()
