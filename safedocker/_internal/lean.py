"""``NamedTuple`` for the modules on the shim's hot paths, without importing :mod:`typing`.

The shim runs on every docker call, and ``import typing`` costs about as much as the whole
warm decision's own work (≈10 ms on a small machine, on top of ``re``/``enum``, which the
hot path needs anyway). Type checkers see :class:`typing.NamedTuple`; at run time a class
written the same way is built with :func:`collections.namedtuple` (already imported by
``enum``): same fields, defaults, ``_replace``/``_asdict``, immutability and equality; the
class body's methods, properties and docstring are kept. tests/unit/_internal/test_lean.py
holds the two to the same behaviour.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import hashlib
    import re
    from typing import NamedTuple as NamedTuple
else:
    from collections import namedtuple

    _KEPT_OUT = frozenset({"__annotations__", "__dict__", "__weakref__"})

    class _Builder(type):
        def __new__(mcs, name, bases, namespace, **kwargs):
            if not bases:  # NamedTuple itself
                return super().__new__(mcs, name, bases, namespace)
            if bases != (NamedTuple,):
                raise TypeError(f"{name}: a NamedTuple is built from NamedTuple alone")
            fields = tuple(namespace.get("__annotations__", {}))
            with_default = [f for f in fields if f in namespace]
            if with_default and fields[len(fields) - len(with_default):] != tuple(with_default):
                raise TypeError(f"{name}: a field without a default follows one with a default")
            plain = namedtuple(name, fields, defaults=[namespace[f] for f in with_default],
                               module=namespace.get("__module__"))
            body = {k: v for k, v in namespace.items() if k not in fields and k not in _KEPT_OUT}
            body["__slots__"] = ()
            body["_field_defaults"] = plain._field_defaults
            return type(name, (plain,), body)

    class NamedTuple(metaclass=_Builder):
        pass


class LazyPattern:
    """A regular expression compiled when first used, not at import: a module on the hot
    path defines several, and a run uses one or two of them (compiling costs about as much
    as matching a thousand times). Importing this module does not import :mod:`re`."""

    __slots__ = ("_compiled", "_flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self._flags = flags
        self._compiled: re.Pattern[str] | None = None

    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            import re

            self._compiled = re.compile(self.pattern, self._flags)
        return self._compiled

    def fullmatch(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.compiled().fullmatch(text, pos)

    def match(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.compiled().match(text, pos)

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        return self.compiled().search(text, pos)

    def sub(self, replacement: str, text: str) -> str:
        return self.compiled().sub(replacement, text)


def sha256(data: bytes = b"") -> hashlib._Hash:
    """``hashlib.sha256(data)``, from the interpreter's own SHA-256 where it has one:
    :mod:`hashlib` loads OpenSSL's libcrypto first, which costs a warm hit more than all
    the hashing it does (a few small files). The digest is the same (tests/unit/_internal/
    test_lean.py); without the built-in module, hashlib's."""
    try:
        from _sha2 import sha256 as builtin  # type: ignore[import-not-found, unused-ignore]  # 3.12+
    except ImportError:
        try:
            from _sha256 import sha256 as builtin  # type: ignore[import-not-found, unused-ignore]  # 3.10, 3.11
        except ImportError:
            from hashlib import sha256 as builtin
    return builtin(data)  # type: ignore[no-any-return]
