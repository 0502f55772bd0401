"""An index over rules so that a decision tests a few scopes, not every one.

:func:`safedocker.policy.model.most_specific` is the definition: the matching rule with
the most specific scope, later rules winning exact ties. The index finds the same rule
by testing only the rules that *can* match an image, each with that same
``Rule.matches`` (so nothing matches here that would not match there):

- a plain scope (registry, namespace, repository) matches ``name`` or a ``/``-prefix of
  it, so it is looked up by each of those prefixes;
- ``repo:tag`` and ``repo@digest`` scopes are looked up by the image's own spelling;
- a glob's text before its first ``*`` is literal, so every name it matches starts with
  that text up to its last ``/``: globs are filed under that prefix and only those filed
  under one of the image's prefixes are tried (their regexps compiled on first use);
- ``*`` matches everything.

A tag holding ``/`` (never one ``parse_reference`` returns) falls back to the scan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from safedocker.policy.model import Rule
    from safedocker.reference import ImageRef


def _file(table: dict[str, list[int]], key: str, position: int) -> None:
    found = table.get(key)
    if found is None:
        table[key] = [position]
    else:
        found.append(position)


class RuleIndex:
    """The rules of one list, filed by what an image must look like to match them."""

    __slots__ = ("_anything", "_digests", "_globs", "_names", "_rules", "_tags")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = tuple(rules)
        self._names: dict[str, list[int]] = {}
        self._tags: dict[str, list[int]] = {}
        self._digests: dict[str, list[int]] = {}
        self._globs: dict[str, list[int]] = {}
        self._anything: list[int] = []
        for position, rule in enumerate(self._rules):
            scope = rule.scope
            # The same order of tests as scope_matches: "*", glob, digest, tag, name.
            if scope == "*":
                self._anything.append(position)
            elif "*" in scope:
                literal = scope[:scope.index("*")]
                _file(self._globs, literal[:max(literal.rfind("/"), 0)], position)
            elif "@" in scope:
                _file(self._digests, scope, position)
            elif "/" in scope and ":" in scope.rsplit("/", 1)[-1]:
                _file(self._tags, scope, position)
            else:
                _file(self._names, scope, position)

    def most_specific(self, ref: ImageRef) -> Rule | None:
        """What ``most_specific(rules, ref)`` returns, found from the index."""
        from safedocker.policy.model import most_specific

        if ref.tag is not None and "/" in ref.tag:
            return most_specific(self._rules, ref)
        name = ref.name
        # name and each "/"-prefix of it; "" too, where globs with no "/" are filed.
        prefixes = [name[:i] for i, ch in enumerate(name) if ch == "/"]
        positions: list[int] = list(self._anything)
        for prefix in (*prefixes, name):
            positions += self._names.get(prefix, ())
        for prefix in ("", *prefixes):
            positions += self._globs.get(prefix, ())
        if ref.digest is not None:
            positions += self._digests.get(f"{name}@{ref.digest}", ())
        tag = ref.tag or (None if ref.digest else "latest")
        if tag is not None:
            positions += self._tags.get(f"{name}:{tag}", ())
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
