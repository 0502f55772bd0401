"""An index over rules so that a decision tests a few scopes, not every one.

:func:`safedocker.policy.model.most_specific` is the definition: the matching rule with
the most specific scope, later rules winning exact ties. The index finds the same rule
by testing only the rules that *can* match an image, each with that same
``Rule.matches`` (so nothing matches here that would not match there):

- a scope without ``*`` matches only when it *is* the image's name, a ``/``-prefix of
  the name (a registry or namespace), ``name:tag`` or ``name@digest``: one set lookup
  per scope finds those;
- a glob's text before its first ``*`` is literal, and its regexp is anchored, so it
  matches ``name`` or ``name:tag`` only if that text starts the longer of the two: only
  those globs are tried (their regexps compiled on first use, as before);
- ``*`` matches everything.

Building the index costs one pass over the scopes (a cached configuration is read in a
few milliseconds, so a heavier index would cost more than it saves); a decision costs
one cheap pass and a few ``matches``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from safedocker.policy.model import Rule
    from safedocker.reference import ImageRef


class RuleIndex:
    """The scopes of one list of rules, and which of them are globs."""

    __slots__ = ("_globs", "_rules", "_scopes")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = tuple(rules)
        self._scopes = [rule.scope for rule in self._rules]
        self._globs = [position for position, scope in enumerate(self._scopes) if "*" in scope]

    def most_specific(self, ref: ImageRef) -> Rule | None:
        """What ``most_specific(rules, ref)`` returns, found from the index."""
        name = ref.name
        # Every spelling a plain scope must have to match (scope_matches' last three
        # cases), and "*"; a tag or digest spelling that does not apply is harmless.
        spellings = {name[:i] for i, ch in enumerate(name) if ch == "/"}
        spellings.update(("*", name, f"{name}:{ref.tag or 'latest'}", f"{name}@{ref.digest}"))
        longest = f"{name}:{ref.tag}" if ref.tag else name
        positions = [i for i, scope in enumerate(self._scopes) if scope in spellings]
        scopes = self._scopes
        positions += [i for i in self._globs
                      if longest.startswith(scopes[i][:scopes[i].index("*")])]
        best: Rule | None = None
        best_key: tuple[tuple[int, int], int] | None = None
        for position in positions:
            rule = self._rules[position]
            if not rule.matches(ref):
                continue
            key = (rule.specificity, position)  # later rules win exact ties
            if best_key is None or key > best_key:
                best, best_key = rule, key
        return best
