"""RFC 8785 (JCS) canonical JSON for the subset Rekor SETs use.

Objects (keys sorted by UTF-16 code units), arrays, strings, integers within the
IEEE-754 exact range, booleans and null. Floats are refused rather than formatted
approximately: a wrong byte would silently turn a valid SET into an invalid one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

MAX_SAFE_INTEGER = 2**53 - 1

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _string(text: str) -> str:
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _utf16_key(text: str) -> bytes:
    return text.encode("utf-16-be")


def _encode(value: object, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is outside the exact JSON range")
        out.append(str(value))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise ValueError("object keys must be strings")
        out.append("{")
        for index, key in enumerate(sorted(value, key=_utf16_key)):
            if index:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _encode(value[key], out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise ValueError(f"cannot canonicalize {value!r:.40}: not a JSON value")


def canonicalize(value: object) -> bytes:
    """The RFC 8785 bytes of ``value``; raises ValueError outside the supported subset."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")
