"""The verifier's decisions that need no registry: reject, unmatched warn and reject."""

from __future__ import annotations

from safedocker.policy.config import Config
from safedocker.policy.model import Action, Decision, Policy, Rule, Unmatched
from safedocker.reference import parse_reference
from safedocker.verify.verifier import Verifier

IMAGE = parse_reference("127.0.0.1:5000/team/app:v1")


def test_policy_decisions_without_registry() -> None:
    deny = Rule(scope="127.0.0.1:5000/team/*", action=Action.REJECT)
    verifier = Verifier(Config(policy=Policy(user_rules=(deny,))))
    verdict = verifier.verify(IMAGE)
    assert not verdict.accepted and "denied by policy" in verdict.reasons[0]
    assert verdict.refusal().exit_code == 77
    unmatched = Verifier(Config(policy=Policy(unmatched=Unmatched.WARN))).verify(IMAGE)
    assert unmatched.accepted and unmatched.warned
    refused = Verifier(Config()).verify(IMAGE)
    assert not refused.accepted and "policy add" in refused.refusal().line()
    assert isinstance(Verifier(Config()).config.policy.decide(IMAGE), Decision)
