from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from safedocker.cache.store import Cache

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    with Cache.open(tmp_path / "cache") as c:
        yield c
