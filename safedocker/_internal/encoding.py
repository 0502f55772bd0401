"""THE base64 of byte fields in JSON documents and annotations: strict standard alphabet.

Decoding checks the alphabet and the padding (Go's ``StdEncoding`` reads the same way);
``ignore_newlines`` drops CR/LF first (Go's decoder skips them, cosign annotations may be
wrapped), ``urlsafe`` also accepts the URL-safe alphabet (protobuf JSON may write either).
:func:`b64decode_protojson` is both at once: how a sigstore bundle's ``bytes`` fields are
read. Failures are ``ValueError`` (``binascii.Error`` is one); callers say what was invalid.
"""

from __future__ import annotations

import base64
import binascii


def b64decode(value: str | bytes, *, ignore_newlines: bool = False,
              urlsafe: bool = False) -> bytes:
    """Decode ``value`` strictly, or raise ``ValueError``."""
    if ignore_newlines:
        value = value.replace("\r", "").replace("\n", "") if isinstance(value, str) else (
            value.replace(b"\r", b"").replace(b"\n", b""))
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        if not urlsafe:
            raise
    return base64.b64decode(value, altchars=b"-_", validate=True)


def b64decode_protojson(value: str | bytes) -> bytes:
    """A protobuf JSON ``bytes`` field (sigstore bundles, Rekor v2 entries): standard or
    URL-safe alphabet, line breaks skipped as Go's decoder skips them (bundles made with
    ``base64 file`` wrap lines); alphabet and padding are otherwise checked strictly."""
    return b64decode(value, ignore_newlines=True, urlsafe=True)


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, as text."""
    return base64.b64encode(data).decode("ascii")
