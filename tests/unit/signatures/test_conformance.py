"""Every key-based row of ../shared/fixtures/cosign-real/README.md, on real cosign bytes.

``accepts`` does what verify/rules.py does for a key rule: some signature must verify with
a trusted key for this manifest digest, fit the reference rule, and (when a Rekor key is
required) carry a SET from that log naming the same signature, key and payload.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from safedocker.errors import VerificationError
from safedocker.reference import parse_reference
from safedocker.signatures.cosign import (
    CosignSignature,
    ReferenceMode,
    check_reference,
    verify_with_keys,
)
from safedocker.signatures.rekor import verify_set
from tests.unit.signatures import cosign_real
from tests.unit.signatures.cosign_real import key, manifest_digest, rekor_key, signatures

if TYPE_CHECKING:
    from safedocker.trust.keys import PublicKey


def outcomes(
    directory: str,
    keys: list[PublicKey],
    *,
    rekor: list[PublicKey] | None = None,
    reference: str | None = None,
    mode: ReferenceMode = "digest",
) -> list[str]:
    """One line per signature: "ok <key>" or the reason it does not count."""
    digest = manifest_digest(directory)
    lines = []
    for sig in signatures(directory):
        result = verify_with_keys(sig, keys, digest)
        if not result.verified:
            lines.append(result.reason)
            continue
        assert result.payload is not None and result.key_name is not None
        if reference is not None:
            mismatch = check_reference(result.payload, parse_reference(reference), mode)
            if mismatch:
                lines.append(mismatch)
                continue
        if rekor is not None:
            signer = next(k for k in keys if k.name == result.key_name)
            try:
                verify_set(sig, rekor, signer.pem)
            except VerificationError as e:
                lines.append(e.why)
                continue
        lines.append(f"ok {result.key_name}")
    return lines


def accepted(lines: list[str]) -> bool:
    return any(line.startswith("ok ") for line in lines)


def test_fixture_directory_is_present() -> None:
    assert (cosign_real.FIXTURES / "README.md").is_file(), cosign_real.FIXTURES


def test_valid_is_accepted_with_cosign_pub() -> None:
    lines = outcomes("dir-img-cosign-valid", [key("cosign.pub")])
    assert lines == ["ok cosign"]


def test_valid_payload_names_the_signed_reference() -> None:
    sig = signatures("dir-img-cosign-valid")[0]
    result = verify_with_keys(sig, [key("cosign.pub")], manifest_digest("dir-img-cosign-valid"))
    assert result.payload is not None
    assert result.payload.docker_reference == "192.168.64.2:5000/cosign-signed-single-sample"


def test_valid_is_rejected_with_the_wrong_key() -> None:
    lines = outcomes("dir-img-cosign-valid", [key("cosign2.pub")])
    assert not accepted(lines)
    assert lines == ["signature does not verify with any trusted key (cosign2)"]


def test_valid_is_rejected_with_an_rsa_key() -> None:
    assert not accepted(outcomes("dir-img-cosign-valid", [key("some-rsa-key.pub")]))


def test_valid_2_has_two_good_signatures() -> None:
    assert outcomes("dir-img-cosign-valid-2", [key("cosign.pub")]) == ["ok cosign", "ok cosign"]


def test_mixed_is_accepted_for_its_one_valid_signature() -> None:
    lines = outcomes("dir-img-cosign-mixed", [key("cosign.pub")])
    assert accepted(lines)
    assert sorted(lines) == ["ok cosign", "signature does not verify with any trusted key (cosign)"]


def test_key_rekor_valid_is_accepted_with_its_set() -> None:
    lines = outcomes("dir-img-cosign-key-rekor-valid", [key("cosign2.pub")], rekor=[rekor_key()])
    assert lines == ["ok cosign2"]


def test_key_rekor_set_gives_the_integrated_time() -> None:
    sig = signatures("dir-img-cosign-key-rekor-valid")[0]
    entry = verify_set(sig, [rekor_key()], key("cosign2.pub").pem)
    assert entry.integrated_time.timestamp() == 1674251859
    assert entry.log_index == 11608800
    assert entry.kind == "hashedrekord"
    assert entry.log_key == "rekor"


def test_key_rekor_valid_is_rejected_when_the_log_key_is_not_rekors() -> None:
    lines = outcomes(
        "dir-img-cosign-key-rekor-valid", [key("cosign2.pub")], rekor=[key("cosign.pub")]
    )
    assert not accepted(lines)
    assert "matches no trusted Rekor key" in lines[0]


def test_key_rekor_valid_is_rejected_when_rekor_key_is_substituted_under_its_log_id() -> None:
    # Even if a key were filed under the right logID, the SET must verify with it.
    sig = signatures("dir-img-cosign-key-rekor-valid")[0]
    impostor = key("cosign.pub")
    forged = type(impostor)(impostor.name, rekor_key().fingerprint, impostor.pem, impostor.key)
    with pytest.raises(VerificationError, match="not signed by Rekor key"):
        verify_set(sig, [forged], key("cosign2.pub").pem)


def test_key_rekor_valid_signature_without_set_policy_still_verifies_by_key() -> None:
    assert outcomes("dir-img-cosign-key-rekor-valid", [key("cosign2.pub")]) == ["ok cosign2"]


def test_modified_manifest_is_rejected_for_digest_mismatch() -> None:
    lines = outcomes("dir-img-cosign-modified-manifest", [key("cosign.pub")])
    assert not accepted(lines)
    digest = manifest_digest("dir-img-cosign-modified-manifest")
    assert lines == [
        "signed payload names digest sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8d"
        f"dc45e5986a00, not {digest}"
    ]


@pytest.mark.parametrize("trusted", ["cosign.pub", "cosign2.pub", "some-rsa-key.pub"])
def test_other_attachment_is_not_a_signature(trusted: str) -> None:
    lines = outcomes("dir-img-cosign-other-attachment", [key(trusted)])
    assert lines == ["not a cosign signature (layer media type 'text/plain')"]


def test_valid_with_tag_is_accepted_for_the_exact_reference() -> None:
    lines = outcomes(
        "dir-img-cosign-valid-with-tag",
        [key("cosign.pub")],
        reference="192.168.64.2:5000/skopeo-signed:tag",
        mode="exact",
    )
    assert lines == ["ok cosign"]


def test_valid_with_tag_is_rejected_for_another_tag() -> None:
    lines = outcomes(
        "dir-img-cosign-valid-with-tag",
        [key("cosign.pub")],
        reference="192.168.64.2:5000/skopeo-signed:othertag",
        mode="exact",
    )
    assert lines == [
        "signature is for 192.168.64.2:5000/skopeo-signed:tag, "
        "not 192.168.64.2:5000/skopeo-signed:othertag"
    ]


def test_valid_with_tag_fits_the_repository_rule_for_any_tag() -> None:
    lines = outcomes(
        "dir-img-cosign-valid-with-tag",
        [key("cosign.pub")],
        reference="192.168.64.2:5000/skopeo-signed:othertag",
        mode="repository",
    )
    assert lines == ["ok cosign"]


def test_valid_is_rejected_under_the_repository_rule_for_another_repository() -> None:
    lines = outcomes(
        "dir-img-cosign-valid",
        [key("cosign.pub")],
        reference="192.168.64.2:5000/other",
        mode="repository",
    )
    assert not accepted(lines)


def _keyless(directory: str) -> CosignSignature:
    (sig,) = signatures(directory)
    return sig


def test_fulcio_fixture_carries_certificate_chain_and_bundle() -> None:
    from cryptography import x509

    sig = _keyless("dir-img-cosign-fulcio-rekor-valid")
    assert sig.is_simple_signing
    assert sig.certificate_pem is not None and sig.chain_pem is not None
    assert sig.bundle_json is not None
    leaf = x509.load_pem_x509_certificate(sig.certificate_pem)
    chain = x509.load_pem_x509_certificates(sig.chain_pem)
    assert chain and leaf.issuer == chain[0].subject


def test_fulcio_fixture_set_verifies_against_its_certificate() -> None:
    sig = _keyless("dir-img-cosign-fulcio-rekor-valid")
    assert sig.certificate_pem is not None
    entry = verify_set(sig, [rekor_key()], sig.certificate_pem)
    leaf_key = key("cosign2.pub")  # any other key must not match the logged certificate
    with pytest.raises(VerificationError, match="different signing key"):
        verify_set(sig, [rekor_key()], leaf_key.pem)
    assert entry.integrated_time.year == 2023


def test_fulcio_fixture_without_the_bundle_has_no_set() -> None:
    sig = _keyless("dir-img-cosign-fulcio-rekor-valid")
    stripped = CosignSignature(sig.media_type, sig.payload, sig.signature_b64, sig.certificate_pem)
    with pytest.raises(VerificationError, match="no Rekor bundle"):
        verify_set(stripped, [rekor_key()], b"")


def test_pki_fixture_carries_certificate_and_chain() -> None:
    from cryptography import x509

    sig = _keyless("dir-img-cosign-pki-valid")
    assert sig.certificate_pem is not None and sig.chain_pem is not None
    assert sig.bundle_json is None
    x509.load_pem_x509_certificate(sig.certificate_pem)
    assert len(x509.load_pem_x509_certificates(sig.chain_pem)) >= 1
    assert len(sig.signature) == 512  # RSA-4096, base64 wrapped over lines in the annotation
