"""What the shim passes to docker without loading the router: a precomputed copy of part
of the command table, for the commands users type most (``docker ps``, ``docker image ls``).

Generated from :mod:`safedocker._docker.commands` by
:func:`safedocker._docker.route.plain_passthrough`; ``tests/unit/_docker/test_fastpass.py``
fails when the two differ, so the table stays the one source of truth. Anything not
matched here goes through :func:`safedocker._docker.route.classify` as before.

Imports nothing (not even typing): this runs before every docker call.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

# Top-level words that are PASS whatever follows them.
WORDS = frozenset((
    "__complete __completeNoDesc attach commit completion cp diff events exec export help "
    "history images import info inspect kill load login logout logs pause port ps push rename "
    "restart rm rmi save search start stats stop tag top unpause update version wait"
).split())
# Groups and their subcommands that are PASS whatever follows them.
GROUPS = {
    "checkpoint": frozenset("create list ls remove rm".split()),
    "container": frozenset((
        "attach commit cp diff exec export inspect kill list logs ls pause port prune ps remove "
        "rename restart rm start stats stop top unpause update wait"
    ).split()),
    "context": frozenset("create export import inspect list ls remove rm show update use".split()),
    "image": frozenset((
        "history import inspect list load ls prune push remove rm rmi save tag"
    ).split()),
    "manifest": frozenset("annotate create inspect push rm".split()),
    "network": frozenset("connect create disconnect inspect list ls prune remove rm".split()),
    "plugin": frozenset("disable enable inspect list ls push remove rm set".split()),
    "system": frozenset("df events info prune".split()),
    "trust": frozenset("inspect key revoke sign signer".split()),
    "volume": frozenset("create inspect list ls prune remove rm update".split()),
    "config": frozenset("create inspect list ls remove rm".split()),
    "node": frozenset("demote inspect list ls promote ps remove rm update".split()),
    "secret": frozenset("create inspect list ls remove rm".split()),
    "service": frozenset("inspect list logs ls ps remove rm rollback scale".split()),
    "stack": frozenset("config down list ls ps remove rm services".split()),
    "swarm": frozenset("ca init join join-token leave unlock unlock-key update".split()),
    "buildx": frozenset((
        "du history imagetools inspect install ls prune rm stop uninstall use version"
    ).split()),
}


def passthrough(argv: Sequence[str]) -> bool:
    """Whether ``argv`` (without the program name) surely goes to docker unchanged: it
    starts with a word above, or a group and one of its subcommands, with no flag before
    or between them (a flag anywhere else changes nothing). False means "ask the router".
    """
    if not argv:
        return False
    first = argv[0]
    if first in WORDS:
        return True
    subs = GROUPS.get(first)
    return subs is not None and len(argv) > 1 and argv[1] in subs
