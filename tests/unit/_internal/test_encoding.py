"""The one base64 decoder: strict by default, newlines and URL-safe only when asked."""

from __future__ import annotations

import pytest

from safedocker._internal.encoding import b64decode, b64decode_protojson, b64encode


def test_round_trip_of_every_byte() -> None:
    data = bytes(range(256))
    assert b64decode(b64encode(data)) == data


@pytest.mark.parametrize("text", ["aGk", "aGk=x", "a$Gk=", "aGk=\n"])
def test_bad_padding_or_alphabet_is_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - binascii.Error is the ValueError raised
        b64decode(text)


def test_newlines_are_skipped_only_when_asked() -> None:
    assert b64decode("aGVs\r\nbG8=", ignore_newlines=True) == b"hello"
    with pytest.raises(ValueError):  # noqa: PT011
        b64decode("aGVs\r\nbG8=")


def test_url_safe_alphabet_only_when_asked() -> None:
    assert b64decode("-_8=", urlsafe=True) == b"\xfb\xff"
    assert b64decode("+/8=", urlsafe=True) == b"\xfb\xff"
    with pytest.raises(ValueError):  # noqa: PT011
        b64decode("-_8=")


def test_protojson_bytes_fields_read_wrapped_lines_in_either_alphabet() -> None:
    data = bytes(range(256))
    wrapped = "\n".join(b64encode(data)[i:i + 76] for i in range(0, 344, 76)) + "\n"
    assert b64decode_protojson(wrapped) == data  # as `base64 file` writes it
    assert b64decode_protojson(wrapped.replace("\n", "\r\n")) == data
    urlsafe = b64encode(data).replace("+", "-").replace("/", "_")
    assert b64decode_protojson(urlsafe) == data


@pytest.mark.parametrize("text", ["aGk", "aGk=x", "a$Gk=", "aG k="])
def test_protojson_bytes_fields_keep_alphabet_and_padding_strict(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - binascii.Error is the ValueError raised
        b64decode_protojson(text)
