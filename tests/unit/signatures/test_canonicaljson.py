"""RFC 8785 canonical JSON, for the subset Rekor SETs use."""

from __future__ import annotations

import pytest

from safedocker.signatures.canonicaljson import canonicalize


def test_rekor_payload_fields_are_sorted_with_log_id_before_log_index() -> None:
    value = {"logIndex": 1, "logID": "ab", "integratedTime": 2, "body": "x"}
    assert canonicalize(value) == b'{"body":"x","integratedTime":2,"logID":"ab","logIndex":1}'


def test_keys_sort_by_utf16_code_units() -> None:
    # U+1F600 is a surrogate pair (D83D ...) and sorts before U+FB01 in UTF-16, unlike
    # in code points; RFC 8785 section 3.2.3 requires UTF-16 order.
    value = {"\ufb01": 1, "\U0001f600": 2, "a": 3}
    assert canonicalize(value) == '{"a":3,"\U0001f600":2,"\ufb01":1}'.encode()


def test_string_escaping_is_minimal() -> None:
    text = 'q"b\\\b\f\n\r\t\x01\x1f/\u00e9\u2028'
    assert canonicalize(text) == '"q\\"b\\\\\\b\\f\\n\\r\\t\\u0001\\u001f/\u00e9\u2028"'.encode()


def test_nested_values() -> None:
    value = {"b": [1, True, None, {"d": False, "c": -3}], "a": {}}
    assert canonicalize(value) == b'{"a":{},"b":[1,true,null,{"c":-3,"d":false}]}'


@pytest.mark.parametrize("value", [1.5, 2**53, -(2**53), b"bytes", {1: "x"}, object()])
def test_values_outside_the_subset_are_refused(value: object) -> None:
    with pytest.raises(ValueError):
        canonicalize(value)
