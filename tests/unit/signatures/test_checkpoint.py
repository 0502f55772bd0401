"""Signed checkpoints (C2SP signed notes) and RFC 6962 inclusion proofs."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from safedocker.errors import VerificationError
from safedocker.signatures.checkpoint import (
    leaf_hash,
    parse_checkpoint,
    root_from_inclusion_proof,
    split_note,
    verify_checkpoint,
    verify_inclusion,
)
from safedocker.trust.keys import load_public_key
from safedocker.trust.roots import LogInstance, Validity
from tests.sigstore_v2 import RekorV2Log, inclusion_path, tree_hash

if TYPE_CHECKING:
    from collections.abc import Callable

# a test log and the trust root's entry for it
LogUnderTest = tuple[RekorV2Log, LogInstance]


def leaves(n: int) -> list[bytes]:
    return [leaf_hash(b"entry %d" % i) for i in range(n)]


def test_every_leaf_of_trees_up_to_33_entries_proves_its_inclusion() -> None:
    for size in range(1, 34):
        tree = leaves(size)
        root = tree_hash(tree)
        for index in range(size):
            proof = inclusion_path(index, tree)
            assert root_from_inclusion_proof(index, size, tree[index], proof) == root


def test_a_proof_for_another_index_size_or_leaf_does_not_lead_to_the_root() -> None:
    tree = leaves(11)
    root, proof = tree_hash(tree), inclusion_path(6, tree)
    for index, size, leaf in ((5, 11, tree[6]), (6, 11, tree[5])):
        assert root_from_inclusion_proof(index, size, leaf, proof) != root
    with pytest.raises(VerificationError):
        verify_inclusion(b"entry 6", 6, 17, proof, root)  # a tree of another shape
    # Sizes 9..16 give leaf 6 the same path shape: the proof alone does not bind the size,
    # which is why the checkpoint's size must equal the proof's (tlog.py checks it).
    assert root_from_inclusion_proof(6, 12, tree[6], proof) == root


@pytest.mark.parametrize("mangle", [lambda p: p[:-1], lambda p: [*p, p[0]],
                                    lambda p: [p[0][:31], *p[1:]]],
                         ids=["short", "long", "bad-hash"])
def test_malformed_proofs_are_refused(mangle: Callable[[list[bytes]], list[bytes]]) -> None:
    tree = leaves(9)
    with pytest.raises(VerificationError, match="inclusion proof"):
        verify_inclusion(b"entry 3", 3, 9, mangle(inclusion_path(3, tree)), tree_hash(tree))


def test_index_outside_the_tree_is_refused() -> None:
    with pytest.raises(VerificationError, match="outside a tree"):
        root_from_inclusion_proof(4, 4, leaf_hash(b"x"), [])


def _public_pem_any(key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(params=["ed25519", "ecdsa"])
def log(request: pytest.FixtureRequest) -> LogUnderTest:
    key = ed25519.Ed25519PrivateKey.generate() if request.param == "ed25519" \
        else ec.generate_private_key(ec.SECP256R1())
    rekor = RekorV2Log(origin=f"{request.param}.log.test", key=key)
    instance = LogInstance(rekor.base_url, rekor.log_id.hex(),
                           load_public_key(_public_pem_any(key), rekor.origin),
                           Validity(datetime(2020, 1, 1, tzinfo=timezone.utc)))
    return rekor, instance


def test_checkpoints_of_ed25519_and_ecdsa_logs_verify(log: LogUnderTest) -> None:
    rekor, instance = log
    root = hashlib.sha256(b"root").digest()
    checkpoint = verify_checkpoint(rekor.checkpoint(42, root, cosigners=2), instance)
    assert (checkpoint.origin, checkpoint.size, checkpoint.root_hash) == (rekor.origin, 42, root)


def test_the_log_key_id_is_the_c2sp_key_id_for_ed25519() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    log = RekorV2Log(origin="log.test", key=key)
    assert log.log_id == hashlib.sha256(b"log.test\n\x01" + raw).digest()


def test_a_signature_line_may_follow_a_witness_line(log: LogUnderTest) -> None:
    rekor, instance = log
    envelope = rekor.checkpoint(3, bytes(32), cosigners=1)
    text, block = envelope.split("\n\n")
    lines = block.rstrip("\n").split("\n")
    reordered = text + "\n\n" + "\n".join(reversed(lines)) + "\n"
    assert verify_checkpoint(reordered, instance).size == 3


def test_a_checkpoint_by_an_unknown_key_or_name_is_refused(log: LogUnderTest) -> None:
    rekor, instance = log
    stranger = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(VerificationError, match="unknown log key"):
        verify_checkpoint(rekor.checkpoint(3, bytes(32), signer=stranger), instance)
    envelope = rekor.checkpoint(3, bytes(32)).replace(f"\u2014 {rekor.origin} ",
                                                      "\u2014 other.log.test ")
    with pytest.raises(VerificationError, match="unknown log key"):
        verify_checkpoint(envelope, instance)


def test_rekor_v1_checkpoints_are_matched_by_key_hint_not_by_hostname(log: LogUnderTest) -> None:
    """Rekor v1 signs as its configured hostname, which a private trusted root's baseUrl
    need not repeat: for v1 entries the key hint and signature decide."""
    rekor, instance = log
    envelope = rekor.checkpoint(3, bytes(32)).replace(f"\u2014 {rekor.origin} ",
                                                      "\u2014 rekor.internal ")
    assert verify_checkpoint(envelope, instance, check_name=False).size == 3
    stranger = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(VerificationError, match="unknown log key"):
        verify_checkpoint(rekor.checkpoint(3, bytes(32), signer=stranger), instance,
                          check_name=False)


def test_a_forged_checkpoint_with_the_logs_name_and_hint_is_refused(log: LogUnderTest) -> None:
    rekor, instance = log
    envelope = rekor.checkpoint(3, bytes(32)).replace("\n3\n", "\n4\n", 1)
    with pytest.raises(VerificationError, match="does not verify"):
        verify_checkpoint(envelope, instance)


def test_a_checkpoint_of_another_origin_is_refused(log: LogUnderTest) -> None:
    rekor, instance = log
    other = RekorV2Log(origin="elsewhere.test", key=rekor.key)
    signed = other.checkpoint(3, bytes(32), name=rekor.origin)  # right key and name
    with pytest.raises(VerificationError, match="is for log 'elsewhere.test'"):
        verify_checkpoint(signed, instance)


@pytest.mark.parametrize("envelope", [
    "origin\n1\nAAAA\n",
    "origin\n1\n\nAAAA\n\n\u2014 origin QUFBQUFB\n",
    "origin\n1\nAAAA\n\n",
    "origin\n1\nAAAA\n\n\u2014 origin QUFBQUFB",
    "origin\n1\nAAAA\n\n- origin QUFBQUFB\n",
    "origin\n1\nAAAA\n\n\u2014 origin QUFB\n",
], ids=["no-blank-line", "two-blank-lines", "no-signature", "no-final-newline",
        "hyphen-not-em-dash", "short-signature"])
def test_malformed_signed_notes_are_refused(envelope: str) -> None:
    with pytest.raises(VerificationError):
        split_note(envelope)


@pytest.mark.parametrize("text", ["origin\n1\n", "origin\n01\n" + "A" * 43 + "=\n",
                                  "origin\n-1\n" + "A" * 43 + "=\n", "origin\n1\nAAAA\n"],
                         ids=["no-hash", "leading-zero", "negative", "short-hash"])
def test_malformed_checkpoint_bodies_are_refused(text: str) -> None:
    with pytest.raises(VerificationError):
        parse_checkpoint(text)


def test_checkpoint_body_keeps_extension_lines() -> None:
    root = base64.b64encode(bytes(32)).decode()
    parsed = parse_checkpoint(f"log.test\n7\n{root}\nTimestamp: 1\n")
    assert parsed.extensions == ("Timestamp: 1",)
