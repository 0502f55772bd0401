"""THE strict JSON reader for untrusted documents: UTF-8 only, no duplicate members, no
NaN/Infinity, and a size cap.

Duplicate members are refused because two parsers (ours and cosign's, the registry's,
docker's) may keep different copies; NaN and Infinity are not JSON. With ``go_keys``,
members whose names are the same to Go are refused too: Go's encoding/json matches a
struct field's name case-insensitively (Unicode simple folding: ``Manifests``,
``manifeſts`` and ``MANIFESTS`` all fill ``manifests``) and keeps the last, so a document
that docker, containerd or the registry decode in Go must not carry two such members.
:func:`loads` raises ``ValueError`` (``UnicodeDecodeError`` and ``json.JSONDecodeError``
included) or ``RecursionError``; :func:`loads_strict` turns every failure into one
:class:`VerificationError` for the signature formats.
"""

from __future__ import annotations

import functools
import json

from safedocker.errors import VerificationError

MAX_BYTES = 16 * 1024 * 1024  # above every caller's own cap; a last bound, not the policy


@functools.lru_cache(maxsize=512)
def _fold_rune(char: str) -> str:
    """The smallest character of ``char``'s simple case-folding orbit (Go's foldRune),
    reached through one-character upper/lower mappings (ſ → S, K (Kelvin) → k → K)."""
    orbit, todo = {char}, [char]
    while todo:
        for other in (todo[-1].upper(), todo.pop().lower()):
            if len(other) == 1 and other not in orbit:
                orbit.add(other)
                todo.append(other)
    return min(orbit)


def go_fold(name: str) -> str:
    """The key under which Go's encoding/json matches a member name to a field: two names
    with the same key fill the same field."""
    return "".join(c.upper() if c < "\x80" else _fold_rune(c) for c in name)


def _members(items: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in items:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _go_members(items: list[tuple[str, object]]) -> dict[str, object]:
    out = _members(items)
    seen: dict[str, str] = {}
    for key in out:
        other = seen.setdefault(go_fold(key), key)
        if other != key:
            raise ValueError(f"keys {other!r} and {key!r} are the same key to Go")
    return out


def _constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes, *, max_bytes: int = MAX_BYTES, go_keys: bool = False) -> object:
    """Parse ``data`` strictly, or raise ``ValueError`` / ``RecursionError``.

    ``go_keys``: also refuse members whose names Go's case-insensitive matching confuses
    (for documents docker or a registry read in Go)."""
    if len(data) > max_bytes:
        raise ValueError(f"larger than {max_bytes} bytes")
    return json.loads(data.decode("utf-8"), object_pairs_hook=_go_members if go_keys
                      else _members, parse_constant=_constant)


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
