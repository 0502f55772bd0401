"""The rule index decides exactly as the plain scan does (issue 16).

Property-style: many seeded random lists of rules — exact names, namespaces, registries
with and without ports, ``repo:tag``, ``repo@digest``, globs of every shape, ``*``,
duplicate scopes (ties, later wins) — against many random image references; the index's
rule must be the very rule ``most_specific`` picks, and ``Policy.decide`` (locked and
not) must equal a decision computed by scanning.
"""

from __future__ import annotations

import random

import pytest

from safedocker.policy.model import (
    Action,
    Decision,
    Policy,
    Rule,
    Unmatched,
    most_specific,
    normalize_scope,
)
from safedocker.policy.ruleindex import RuleIndex
from safedocker.reference import ImageRef, parse_reference

HOSTS = ("docker.io", "ghcr.io", "127.0.0.1:5000", "localhost:5000", "reg.example.com",
         "reg2.example.com", "localhost")
PARTS = ("library", "app", "app-dev", "lib", "a", "b", "team", "x1")
TAGS = ("latest", "v1", "v1.2", "1.0", "dev")
DIGESTS = ("sha256:" + "ab" * 32, "sha256:" + "cd" * 32)


def _path(rng: random.Random, most: int = 3) -> str:
    return "/".join(rng.choice(PARTS) for _ in range(rng.randint(1, most)))


def _glob(rng: random.Random, text: str) -> str:
    """``text`` with a ``*`` somewhere: a whole component, part of one, or a /* tail."""
    shape = rng.randrange(5)
    if shape == 0:
        return text + "/*"
    parts = text.split("/")
    at = rng.randrange(len(parts))
    if shape == 1:
        parts[at] = "*"
    elif shape == 2:
        parts[at] = parts[at][:rng.randint(0, len(parts[at]))] + "*"
    elif shape == 3:
        parts[at] = "*" + parts[at][rng.randint(0, len(parts[at])):]
    else:
        parts[at] = parts[at][:1] + "*" + parts[at][2:]
    return "/".join(parts)


def random_scope(rng: random.Random) -> str:
    host, path = rng.choice(HOSTS), _path(rng)
    kind = rng.randrange(12)
    if kind == 0:
        return "*"
    if kind == 1:
        return host
    if kind == 2:
        return f"{host}/{path}:{rng.choice(TAGS)}"
    if kind == 3:
        return f"{host}/{path}@{rng.choice(DIGESTS)}"
    if kind == 4:
        return _glob(rng, f"{host}/{path}")
    if kind == 5:  # a glob in the tag
        return f"{host}/{path}:{rng.choice(TAGS)[:rng.randint(0, 2)]}*"
    if kind == 6:  # a glob in the host
        return _glob(rng, host) + rng.choice(("", "/*", f"/{path}"))
    if kind == 7:  # several globs
        return _glob(rng, _glob(rng, f"{host}/{path}"))
    if kind == 8:  # written as a user would, normalized as the config reader does
        return normalize_scope(rng.choice((path, f"{path}:{rng.choice(TAGS)}", f"{path}/*")))
    if kind == 9:  # a glob with a digest (never matches: kept to show it stays so)
        return f"{host}/{path}*@{rng.choice(DIGESTS)}"
    return f"{host}/{path}"


def random_ref(rng: random.Random) -> ImageRef:
    text = f"{rng.choice(HOSTS)}/{_path(rng, 4)}"
    if rng.random() < 0.6:
        text += f":{rng.choice(TAGS)}"
    if rng.random() < 0.3:
        text += f"@{rng.choice(DIGESTS)}"
    return parse_reference(text)


def random_rules(rng: random.Random, count: int, source: str) -> tuple[Rule, ...]:
    scopes = [random_scope(rng) for _ in range(count)]
    scopes += rng.sample(scopes, k=min(len(scopes), rng.randint(0, 3)))  # exact ties
    rng.shuffle(scopes)
    return tuple(Rule(scope=scope, action=rng.choice(list(Action)), source=f"{source}{i}")
                 for i, scope in enumerate(scopes))


def decide_by_scanning(policy: Policy, ref: ImageRef) -> Decision:
    """Policy.decide as it was before the index: most_specific over each list, then the
    policy's own lock combination (Policy.decided)."""
    if policy.locked:
        return policy.decided(ref, most_specific(policy.system_rules, ref),
                              most_specific(policy.user_rules, ref))
    return policy.decided(ref, most_specific(policy.rules, ref), None)


@pytest.mark.parametrize("seed", range(40))
def test_the_index_picks_the_very_rule_the_scan_picks(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    checked = matched = 0
    for _ in range(25):
        rules = random_rules(rng, rng.randint(0, 60), "r")
        index = RuleIndex(rules)
        for _ in range(40):
            ref = random_ref(rng)
            expected = most_specific(rules, ref)
            assert index.most_specific(ref) is expected, (ref, expected)
            checked += 1
            matched += expected is not None
    # The generator makes the comparison mean something: most images match some rule,
    # and not all of them match only "*".
    assert matched > checked // 2


@pytest.mark.parametrize("seed", range(15))
@pytest.mark.parametrize("locked", [False, True])
def test_decide_equals_the_scanning_decision_locked_or_not(seed: int, locked: bool) -> None:
    rng = random.Random(1000 + seed)  # noqa: S311 - a reproducible sample
    for _ in range(10):
        policy = Policy(system_rules=random_rules(rng, rng.randint(0, 30), "system"),
                        user_rules=random_rules(rng, rng.randint(0, 30), "user"),
                        locked=locked, unmatched=rng.choice(list(Unmatched)))
        for _ in range(40):
            ref = random_ref(rng)
            decided = policy.decide(ref)
            assert decided == decide_by_scanning(policy, ref)
            assert [r.source for r in decided.rules] == \
                [r.source for r in decide_by_scanning(policy, ref).rules]


@pytest.mark.parametrize(
    ("scopes", "image", "winner"),
    [
        # most specific wins; a plain scope beats a glob of the same literal length
        (["docker.io/library/*", "docker.io/library/ubuntu"], "ubuntu", 1),
        (["docker.io/library/ubu*", "docker.io/library/ubu"], "docker.io/library/ubu", 1),
        (["docker.io/library/ubuntu", "docker.io/library/ubuntu:22.04"], "ubuntu:22.04", 1),
        (["docker.io/library/ubuntu:latest", "docker.io"], "ubuntu", 0),
        (["docker.io", "docker.io"], "ubuntu", 1),  # an exact tie: the later rule
        (["*", "127.0.0.1:5000"], "127.0.0.1:5000/a/b:v1", 1),  # a registry with a port
        (["127.0.0.1:5000"], "127.0.0.1:50001/a", None),
        (["ghcr.io/org/*:v*"], "ghcr.io/org/app:v2", 0),  # a glob in the tag
        (["ghcr.io/org/*:v*"], "ghcr.io/org/app:2", None),
        (["*.example.com/*"], "reg.example.com/a/b/c", 0),  # a glob in the host
        (["docker.io/nvidia/cuda*"], "nvidia/cuda/x", None),  # * stays in one component
        ([f"docker.io/a/b@{DIGESTS[0]}"], f"a/b@{DIGESTS[0]}", 0),
        ([f"docker.io/a/b@{DIGESTS[0]}"], f"a/b:v1@{DIGESTS[1]}", None),
    ],
)
def test_index_examples(scopes: list[str], image: str, winner: int | None) -> None:
    rules = tuple(Rule(scope=s, action=Action.ACCEPT, source=str(i))
                  for i, s in enumerate(scopes))
    ref = parse_reference(image)
    found = RuleIndex(rules).most_specific(ref)
    assert found is (None if winner is None else rules[winner])
    assert found is most_specific(rules, ref)
