"""Which way an argv goes: pure functions over docker's own grammar, on every docker call.

docker's command tree (:mod:`safedocker._docker.commands`) says what each command can do
to images: a command that cannot bring an image to life goes to docker unchanged
(PASSTHROUGH); one that can (VERIFY), one safe-docker cannot verify (REFUSE) and any
word it does not know (a CLI plugin) go to the gate (INTERCEPT), which decides with the
command's full grammar. Then safe-docker's own commands and its help. Standard library
only.
"""

from __future__ import annotations

import enum

from safedocker._docker.argv import split_globals
from safedocker._docker.commands import BUILDER_WORDS, DOCKER, Kind, lookup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

OWN_COMMANDS = frozenset(
    {
        "verify", "keys", "policy", "cache", "trust-root", "audit", "gpu",
        "doctor", "sign", "airgap", "shell-init", "compose",
    }
)


_VERBOSE_FLAGS = frozenset({"-v", "-vv", "-vvv", "--verbose"})


class Route(enum.Enum):
    PASSTHROUGH = "passthrough"  # docker, unchanged
    INTERCEPT = "intercept"  # the gate decides (gate/dispatch.py)
    OWN = "own"
    HELP = "help"  # safe-docker's own help / version


def classify(argv: Sequence[str]) -> Route:
    """Decide what to do with ``argv`` (without the program name)."""
    if not argv or argv[0] in ("--help", "-h", "--version"):
        return Route.HELP
    # `safe-docker -v verify …`: -v is docker's --version, but before one of our own
    # commands it can only mean our --verbose.
    first_word = next((i for i, token in enumerate(argv) if token not in _VERBOSE_FLAGS), None)
    if first_word is not None and first_word > 0 and argv[first_word] in OWN_COMMANDS:
        return Route.OWN
    split = split_globals(argv)
    if split.command_index >= len(argv):
        return Route.PASSTHROUGH  # only global flags (e.g. `docker -v`): docker answers
    words = argv[split.command_index :]
    if split.command_index == 0 and words[0] in OWN_COMMANDS:
        return Route.OWN
    if words[0] == "compose":
        return Route.OWN  # `docker -H x compose up` must be verified too
    # docker's own rules for finding the command words (help flags and `--` may sit
    # between `container` and `run`); the table says what the command can do.
    if lookup(argv).kind is Kind.PASS:
        return Route.PASSTHROUGH
    return Route.INTERCEPT


def plain_passthrough() -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The words that route to PASSTHROUGH whatever follows them when argv starts with
    them plainly (no global flag before, no flag between a group and its subcommand):
    top-level words, and each group's subcommands. Derived from the table; the shim's
    precomputed copy (:mod:`safedocker._docker.fastpass`) is checked against it by a test.

    Left out: our own commands and compose, the builder words (docker's config and
    DOCKER_BUILDKIT decide where they go) and ``image build``.
    """
    words: set[str] = set()
    groups: dict[str, frozenset[str]] = {}
    for word, node in DOCKER.items():
        if word in OWN_COMMANDS or word == "compose" or word in BUILDER_WORDS:
            continue
        if isinstance(node, Kind):
            if node is Kind.PASS:
                words.add(word)
            continue
        subs = frozenset(s for s, kind in node.items()
                         if kind is Kind.PASS and (word, s) != ("image", "build"))
        if subs:
            groups[word] = subs
    return frozenset(words), groups
