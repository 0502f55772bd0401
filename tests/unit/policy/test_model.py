from __future__ import annotations

import pytest

from safedocker.policy.model import Action, Policy, Rule, Unmatched, normalize_scope, scope_matches
from safedocker.reference import parse_reference

SHA = "sha256:" + "cd" * 32


@pytest.mark.parametrize(
    ("scope", "normalized"),
    [
        ("ubuntu", "docker.io/library/ubuntu"),
        ("pytorch/*", "docker.io/pytorch/*"),
        ("docker.io/pytorch/*", "docker.io/pytorch/*"),
        ("index.docker.io/a/b", "docker.io/a/b"),
        ("127.0.0.1:5000", "127.0.0.1:5000"),
        ("ghcr.io/org", "ghcr.io/org"),
        ("*", "*"),
        ("", "*"),
    ],
)
def test_scopes_normalize_like_image_names(scope: str, normalized: str) -> None:
    assert normalize_scope(scope) == normalized


@pytest.mark.parametrize(
    ("scope", "image", "matches"),
    [
        ("docker.io/pytorch/*", "pytorch/pytorch:2.7", True),
        ("docker.io/pytorch/*", "pytorch/a/b", True),
        ("docker.io/pytorch/*", "pytorchx/pytorch", False),
        ("docker.io/pytorch", "pytorch/pytorch", True),  # namespace covers what is beneath
        ("docker.io/pytorch", "pytorchx/y", False),  # ... but not a longer name
        ("docker.io/library/ubuntu", "ubuntu:22.04", True),
        ("docker.io/library/ubuntu:22.04", "ubuntu:22.04", True),
        ("docker.io/library/ubuntu:22.04", "ubuntu:24.04", False),
        ("docker.io/library/ubuntu:latest", "ubuntu", True),
        ("docker.io/library/ubuntu:latest", f"ubuntu@{SHA}", False),
        ("127.0.0.1:5000", "127.0.0.1:5000/a/b", True),
        ("127.0.0.1:5000", "127.0.0.1:50001/a", False),
        ("*.example.com", "reg.example.com/a", False),  # a host glob needs the /* tail
        ("*.example.com/*", "reg.example.com/a", True),
        ("docker.io/nvidia/cuda*", "nvidia/cuda-dev", True),
        ("docker.io/nvidia/cuda*", "nvidia/cuda/x", False),  # * stays inside one component
        ("*", "anything/at:all", True),
    ],
)
def test_scope_matching(scope: str, image: str, matches: bool) -> None:
    assert scope_matches(scope, parse_reference(image)) is matches


def _rule(scope: str, action: Action, source: str = "user") -> Rule:
    return Rule(scope=normalize_scope(scope), action=action,
                keys=("k",) if action is Action.VERIFY else (), source=source)


def test_most_specific_scope_wins() -> None:
    policy = Policy(user_rules=(
        _rule("docker.io/*", Action.REJECT),
        _rule("pytorch/*", Action.VERIFY),
        _rule("pytorch/pytorch:nightly", Action.ACCEPT),
    ))
    assert policy.decide(parse_reference("pytorch/pytorch:2.7")).action is Action.VERIFY
    assert policy.decide(parse_reference("pytorch/pytorch:nightly")).action is Action.ACCEPT
    assert policy.decide(parse_reference("ubuntu")).action is Action.REJECT
    unmatched = policy.decide(parse_reference("ghcr.io/a/b"))
    assert unmatched.action is None and unmatched.unmatched is Unmatched.REJECT


def test_unlocked_user_rule_overrides_system_rule() -> None:
    policy = Policy(system_rules=(_rule("pytorch/*", Action.VERIFY, "system"),),
                    user_rules=(_rule("pytorch/*", Action.ACCEPT),))
    assert policy.decide(parse_reference("pytorch/pytorch")).action is Action.ACCEPT


def test_locked_system_policy_cannot_be_weakened_by_the_user() -> None:
    policy = Policy(system_rules=(_rule("pytorch/*", Action.VERIFY, "system"),),
                    user_rules=(_rule("pytorch/*", Action.ACCEPT),
                                _rule("ghcr.io/*", Action.ACCEPT)),
                    locked=True)
    decision = policy.decide(parse_reference("pytorch/pytorch"))
    assert decision.action is Action.VERIFY
    assert [r.source for r in decision.verify_rules] == ["system"]
    # A user "accept" for an image no system rule covers does not beat `unmatched = reject`.
    assert policy.decide(parse_reference("ghcr.io/a/b")).action is Action.REJECT


def test_locked_user_rules_add_requirements() -> None:
    user = Rule(scope="docker.io/pytorch/*", action=Action.VERIFY, keys=("mine",), source="user")
    policy = Policy(system_rules=(_rule("pytorch/*", Action.VERIFY, "system"),),
                    user_rules=(user, _rule("pytorch/bad", Action.REJECT)), locked=True)
    decision = policy.decide(parse_reference("pytorch/pytorch"))
    assert [r.keys for r in decision.verify_rules] == [("k",), ("mine",)]
    assert policy.decide(parse_reference("pytorch/bad")).action is Action.REJECT
