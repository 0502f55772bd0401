"""Access to ../shared/conformance: the peers' own test vectors (see SOURCE there).

The directory sits next to the checkout (``REPO.parent / "shared"``, as on main); a
checkout that carries its own ``shared/`` or a worktree nested deeper finds it further up.
A missing file fails the tests loudly, never skips them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]


def conformance_dir() -> Path:
    for base in (REPO.parent, REPO, *REPO.parent.parents):
        candidate = base / "shared" / "conformance"
        if (candidate / "SOURCE").is_file():
            return candidate
    return REPO.parent / "shared" / "conformance"


CONFORMANCE = conformance_dir()


def load(name: str) -> Any:
    """One vector file, parsed; AssertionError (at collection) when it is missing."""
    path = CONFORMANCE / name
    assert path.is_file(), f"missing conformance vectors {path}"
    return json.loads(path.read_text(encoding="utf-8"))
