"""Signed checkpoints (C2SP signed-note + tlog-checkpoint) and RFC 6962 inclusion proofs.

A transparency-log entry in a sigstore bundle proves its inclusion with a Merkle path to a
root hash, and that root hash with a checkpoint the log signed. Both Rekor v1 and Rekor v2
(tiles) logs write checkpoints as C2SP signed notes::

    <origin>\\n<tree size>\\n<base64 root hash>\\n[extension lines\\n]
    \\n
    \\u2014 <key name> <base64(4-byte key hint || signature)>\\n   (one or more)

The key hint is the first four bytes of the log's key ID, which the trusted root lists as
the log's ``logId`` (sha256 of the DER key for ECDSA logs; for Ed25519 logs the C2SP key ID,
sha256 of ``name || 0x0A || 0x01 || key``). A line whose name (the log's URL host) and hint
are the log's must verify; lines of other keys (witness cosignatures) are ignored; at
least one line must be the log's (Rekor v1: see :func:`verify_checkpoint`). Ed25519 signs
the note text itself, ECDSA its SHA-256 (as cosign and Rekor do).
"""

from __future__ import annotations

import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from safedocker._internal.encoding import b64decode
from safedocker.errors import VerificationError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from safedocker.trust.roots import LogInstance

MAX_CHECKPOINT_SIZE = 64 * 1024
MAX_SIGNATURE_LINES = 100  # C2SP: a note carries at most 100 signatures
MAX_PROOF_HASHES = 64  # a tree of 2**64 leaves needs no more
HASH_SIZE = 32

_SIGNATURE_LINE = re.compile(r"\u2014 (\S+) ([A-Za-z0-9+/]+={0,2})")
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,19})")


def _fail(why: str) -> VerificationError:
    return VerificationError(
        "transparency-log inclusion proof does not verify",
        why=why,
        hint="check that the trust root lists the log that recorded the signature",
    )


@dataclass(frozen=True)
class Checkpoint:
    """The body of a verified checkpoint: which tree the log committed to."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_hint: bytes
    signature: bytes


def split_note(envelope: str) -> tuple[str, list[NoteSignature]]:
    """(note text, signature lines) of a C2SP signed note, or raise."""
    if len(envelope) > MAX_CHECKPOINT_SIZE:
        raise _fail(f"checkpoint larger than {MAX_CHECKPOINT_SIZE} characters")
    if envelope.count("\n\n") != 1:
        raise _fail("checkpoint is not a signed note (one blank line between text and "
                    "signatures)")
    text, _, block = envelope.partition("\n\n")
    text += "\n"
    if not block or not block.endswith("\n"):
        raise _fail("checkpoint has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURE_LINES:
        raise _fail(f"checkpoint has more than {MAX_SIGNATURE_LINES} signatures")
    signatures = []
    for line in lines:
        match = _SIGNATURE_LINE.fullmatch(line)
        if match is None:
            raise _fail("checkpoint has a malformed signature line")
        try:
            raw = b64decode(match.group(2))
        except (binascii.Error, ValueError) as e:
            raise _fail("checkpoint signature is not base64") from e
        if len(raw) < 5:
            raise _fail("checkpoint signature is too short")
        signatures.append(NoteSignature(match.group(1), raw[:4], raw[4:]))
    return text, signatures


def parse_checkpoint(text: str) -> Checkpoint:
    """The origin, size and root hash of a checkpoint's note text (ending in a newline)."""
    lines = text.split("\n")[:-1]
    if len(lines) < 3 or not all(lines):
        raise _fail("checkpoint lacks its origin, tree size or root hash")
    origin, size_text, hash_text = lines[0], lines[1], lines[2]
    if _DECIMAL.fullmatch(size_text) is None:
        raise _fail("checkpoint tree size is not a decimal number")
    try:
        root_hash = b64decode(hash_text)
    except (binascii.Error, ValueError) as e:
        raise _fail("checkpoint root hash is not base64") from e
    if len(root_hash) != HASH_SIZE:
        raise _fail("checkpoint root hash is not a SHA-256 hash")
    return Checkpoint(origin, int(size_text), root_hash, tuple(lines[3:]))


def log_name(log: LogInstance) -> str:
    """The key name a log signs checkpoints with: its URL without scheme or trailing '/'."""
    return log.base_url.split("://", 1)[-1].rstrip("/")


def verify_checkpoint(envelope: str, log: LogInstance, *,
                      check_name: bool = True) -> Checkpoint:
    """Verify a signed checkpoint by ``log``'s key; returns its body, or raises.

    ``check_name``: the signature line must carry the log's name and the checkpoint its
    origin, as C2SP notes require (Rekor v2). Rekor v1 signs with a configured hostname
    that a private deployment's trusted root need not repeat, so for its entries (as
    Rekor's own clients do) the key hint and the signature decide.
    """
    text, signatures = split_note(envelope)
    name = log_name(log)
    hint = bytes.fromhex(log.log_id)[:4]
    ours = [s for s in signatures
            if s.key_hint == hint and (s.name == name or not check_name)]
    if not ours:
        raise _fail(f"the checkpoint is not signed by log {name} (unknown log key)")
    for item in ours:
        if not log.key.verify(item.signature, text.encode("utf-8")):
            raise _fail(f"the checkpoint signature of log {name} does not verify")
    checkpoint = parse_checkpoint(text)
    if check_name and checkpoint.origin != name \
            and not checkpoint.origin.startswith(name + " - "):
        raise _fail(f"the checkpoint is for log {checkpoint.origin!r}, not {name}")
    return checkpoint


# --- RFC 6962 / RFC 9162 Merkle trees -------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes,
                              proof: Sequence[bytes]) -> bytes:
    """The root hash that ``proof`` yields for leaf hash ``leaf`` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise _fail(f"inclusion proof index {index} is outside a tree of {size} entries")
    if len(proof) > MAX_PROOF_HASHES or any(len(p) != HASH_SIZE for p in proof):
        raise _fail("inclusion proof hashes are malformed")
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise _fail("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise _fail("inclusion proof is shorter than the tree is deep")
    return result


def verify_inclusion(body: bytes, index: int, size: int, proof: Sequence[bytes],
                     root_hash: bytes) -> None:
    """Raise unless ``body`` is leaf ``index`` of the tree of ``size`` with ``root_hash``."""
    if root_from_inclusion_proof(index, size, leaf_hash(body), proof) != root_hash:
        raise _fail("the inclusion proof does not lead to the logged root hash")
