"""What the own commands print: text from a certificate or a registry is shown escaped."""

from __future__ import annotations

from safedocker.ops.present import verdict_lines
from safedocker.policy.config import Config
from safedocker.reference import Digest, parse_reference
from safedocker.verify.verdict import Signer, Verdict


def test_verify_report_escapes_control_characters_of_a_certificate_subject() -> None:
    ref = parse_reference("127.0.0.1:5000/team/app:v1")
    signer = Signer("keyless", "dev@example.com\x1b]52;c;eA==\x07\x1b[2K", "https://issuer")
    verdict = Verdict(ref, Config().policy.decide(ref), accepted=True,
                      digest=Digest.of(b"x"), signers=(signer,))
    lines = verdict_lines(verdict)
    assert all(c.isprintable() for line in lines for c in line), lines
    assert "signer:    dev@example.com\\x1b]52;c;eA==\\x07\\x1b[2K (keyless, https://issuer)" \
        in lines
