"""Strict JSON for untrusted documents: no duplicate keys, no NaN, valid UTF-8 only.

Duplicate keys are refused because two parsers (ours and cosign's, or the registry's)
may keep different copies; NaN and Infinity are not JSON.
"""

from __future__ import annotations

import json

from safedocker.errors import VerificationError


def loads_strict(data: bytes, what: str) -> object:
    """Parse JSON refusing duplicate keys, NaN/Infinity and invalid UTF-8."""

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in items:
            if key in out:
                raise VerificationError(f"invalid {what}", why=f"duplicate key {key!r}")
            out[key] = value
        return out

    def constant(name: str) -> object:
        raise VerificationError(f"invalid {what}", why=f"{name} is not JSON")

    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except UnicodeDecodeError as e:
        raise VerificationError(f"invalid {what}", why="not UTF-8 text") from e
    except json.JSONDecodeError as e:
        raise VerificationError(
            f"invalid {what}", why=f"not JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from e
    except RecursionError as e:
        raise VerificationError(f"invalid {what}", why="not JSON (nested too deeply)") from e
