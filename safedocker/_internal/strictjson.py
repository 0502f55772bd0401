"""THE strict JSON reader for untrusted documents: UTF-8 only, no duplicate members, no
NaN/Infinity, and a size cap.

Duplicate members are refused because two parsers (ours and cosign's, the registry's,
docker's) may keep different copies; NaN and Infinity are not JSON. :func:`loads` raises
``ValueError`` (``UnicodeDecodeError`` and ``json.JSONDecodeError`` included) or
``RecursionError``; :func:`loads_strict` turns every failure into one
:class:`VerificationError` for the signature formats.
"""

from __future__ import annotations

import json

from safedocker.errors import VerificationError

MAX_BYTES = 16 * 1024 * 1024  # above every caller's own cap; a last bound, not the policy


def _members(items: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in items:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes, *, max_bytes: int = MAX_BYTES) -> object:
    """Parse ``data`` strictly, or raise ``ValueError`` / ``RecursionError``."""
    if len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes} bytes")
    return json.loads(data.decode("utf-8"), object_pairs_hook=_members,
                      parse_constant=_constant)


def loads_strict(data: bytes, what: str) -> object:
    """Parse JSON refusing duplicate keys, NaN/Infinity and invalid UTF-8."""
    try:
        return loads(data)
    except UnicodeDecodeError as e:
        raise VerificationError(f"invalid {what}", why="not UTF-8 text") from e
    except json.JSONDecodeError as e:
        raise VerificationError(
            f"invalid {what}", why=f"not JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from e
    except RecursionError as e:
        raise VerificationError(f"invalid {what}", why="not JSON (nested too deeply)") from e
    except ValueError as e:  # a duplicate member, NaN/Infinity, too large
        raise VerificationError(f"invalid {what}", why=str(e)) from e
