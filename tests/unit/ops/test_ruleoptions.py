"""``policy add``'s options → the rule table: the first bad option is the one named."""

from __future__ import annotations

import pytest

from safedocker.errors import UsageError
from safedocker.ops.present import rule_added_line
from safedocker.ops.ruleoptions import RuleOptions, verify_rule


def test_a_rule_carries_every_option_given() -> None:
    rule = verify_rule(RuleOptions(
        keys=("k",), identities=("https://iss=me@x",), threshold="2", annotations=("a=b",),
        signatures_repository="ghcr.io/sigs", remaps=("a.io/x=b.io/x",), trust_root="corp"))
    assert rule == {
        "action": "verify", "keys": ["k"], "threshold": 2, "tlog": "optional",
        "reference": "repository", "gpu": "auto",
        "identities": [{"issuer": "https://iss", "subject": "me@x"}],
        "annotations": {"a": "b"}, "signatures_repository": "ghcr.io/sigs",
        "signed_identity": {"remap": [{"prefix": "a.io/x", "signed_prefix": "b.io/x"}]},
        "trust_root": "corp",
    }
    assert rule_added_line("ghcr.io/x", rule) == (
        "policy for ghcr.io/x: verify with k, me@x (trusted root corp)")


def test_no_signer_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="needs a signer"):
        verify_rule(RuleOptions())


def test_an_identity_regexp_python_reads_otherwise_is_refused() -> None:
    with pytest.raises(UsageError, match="invalid --identity-regexp"):
        verify_rule(RuleOptions(identity_regexps=("https://x=(?=a)",)))


def test_a_bad_annotation_is_named_before_a_missing_signer() -> None:
    with pytest.raises(UsageError, match="invalid --annotation"):
        verify_rule(RuleOptions(annotations=("novalue",)))


def test_remap_needs_the_signed_reference_checked() -> None:
    with pytest.raises(UsageError, match="--remap needs the signed reference checked"):
        verify_rule(RuleOptions(keys=("k",), reference="digest", remaps=("a=b",)))
