"""sigstore-conformance bundle-verify: every case, through safe-docker's bundle verifier.

../shared/conformance/sigstore_conformance/bundle-verify holds the peer suite's cases (see
its README): a bundle, optionally an artifact, identity, issuer, key.pub and
trusted_root.json; a name ending in ``_fail`` must be refused. The artifacts are files,
not images: the claim checked is "this bundle signs this artifact's sha256" (a DSSE
statement naming it as a subject, of any predicate type, or a message signature over it),
with an exact issuer + SAN identity, or with the case's key and the log required. The
default trust root is the public-good one sigstore-python ships; nothing is fetched.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from safedocker.errors import ConfigError
from safedocker.policy.model import Identity, Tlog
from safedocker.reference import Digest
from safedocker.signatures.bundle import verify_bundle
from safedocker.trust.keys import load_public_key
from safedocker.trust.roots import embedded_trust_root, parse_trust_root

REPO = Path(__file__).resolve().parents[3]
# ../shared next to the checkout; a git worktree under another directory finds it higher up.
SHARED = next((p / "shared" for p in REPO.parents if (p / "shared" / "conformance").is_dir()),
              REPO.parent / "shared")
SUITE = SHARED / "conformance" / "sigstore_conformance" / "bundle-verify"
DEFAULT_IDENTITY = ("https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-"
                    "beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main")
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"
EXPECTED_CASES = 70

CASES = sorted(p.name for p in SUITE.iterdir() if p.is_dir()) if SUITE.is_dir() else []


def outcome(case: str) -> tuple[bool, str]:
    """(verified, reason) of one case, as safe-docker's bundle verification decides it."""
    directory = SUITE / case

    def text(name: str, default: str) -> str:
        path = directory / name
        return path.read_text().strip() if path.is_file() else default

    artifact_path = directory / "artifact"
    artifact = (artifact_path if artifact_path.is_file() else SUITE / "a.txt").read_bytes()
    root_path = directory / "trusted_root.json"
    try:
        root = (parse_trust_root(root_path.read_bytes(), name=case) if root_path.is_file()
                else embedded_trust_root())
    except ConfigError as e:  # a malformed trusted root refuses everything it would verify
        return False, f"{e.what}: {e.why}"
    key_path = directory / "key.pub"
    if key_path.is_file():
        try:
            key = load_public_key(key_path.read_bytes(), "key")
        except ConfigError as e:  # a key safe-docker cannot load verifies nothing
            return False, f"{e.what}: {e.why}"
        result = verify_bundle((directory / "bundle.sigstore.json").read_bytes(),
                               Digest.of(artifact), keys=[key], trust_root=root,
                               tlog=Tlog.REQUIRED, predicate_type=None)
    else:
        identity = Identity(issuer=text("issuer", DEFAULT_ISSUER),
                            subject=text("identity", DEFAULT_IDENTITY))
        result = verify_bundle((directory / "bundle.sigstore.json").read_bytes(),
                               Digest.of(artifact), identities=[identity], trust_root=root,
                               predicate_type=None)
    return result.verified, result.reason


def test_the_suite_is_present_with_all_its_cases() -> None:
    assert len(CASES) == EXPECTED_CASES, SUITE


@pytest.mark.parametrize("case", CASES)
def test_case_agrees_with_the_suite(case: str) -> None:
    verified, reason = outcome(case)
    if case.endswith("_fail"):
        assert not verified, f"{case} must be refused"
        assert reason, "a refusal always says why"
    else:
        assert verified, f"{case} must verify: {reason}"
