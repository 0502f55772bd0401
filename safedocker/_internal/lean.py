"""Stand-ins for the modules on the shim's hot paths: ``NamedTuple`` without :mod:`typing`,
regular expressions compiled on first use, SHA-256 without OpenSSL.

The shim runs on every docker call, and ``import typing`` costs about as much as the whole
warm decision's own work (≈10 ms on a small machine, on top of ``re``/``enum``, which the
hot path needs anyway). Type checkers see :class:`typing.NamedTuple`; at run time a class
written the same way is built here as a tuple subclass: the same fields, defaults,
``_fields``/``_field_defaults``/``_replace``/``_asdict``/``_make``, immutability, equality,
hashing, repr, pickling and ``match`` patterns; the class body's methods, properties and
docstring are kept. Unlike :func:`collections.namedtuple` it compiles no source (``exec``
costs ≈0.4 ms a class, and the hot path defines a dozen). tests/unit/_internal/
test_lean.py holds it to typing.NamedTuple's behaviour.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import hashlib
    import re
    from collections.abc import Callable
    from typing import NamedTuple as NamedTuple
else:
    try:  # operator.py only re-exports it, and costs a hit ≈1 ms to load
        from _operator import itemgetter
    except ImportError:
        from operator import itemgetter

    _KEPT_OUT = frozenset({"__annotations__", "__dict__", "__weakref__"})

    def _methods(name, fields, defaults):
        count = len(fields)
        index = {field: i for i, field in enumerate(fields)}
        first_default = count - len(defaults)

        def __new__(cls, *args, **kwargs):
            if not kwargs and len(args) == count:
                return tuple.__new__(cls, args)
            if len(args) > count:
                raise TypeError(f"{name}() takes {count} positional arguments but "
                                f"{len(args)} were given")
            values = list(args) + [_MISSING] * (count - len(args))
            for key, value in kwargs.items():
                at = index.get(key)
                if at is None:
                    raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
                if values[at] is not _MISSING:
                    raise TypeError(f"{name}() got multiple values for argument {key!r}")
                values[at] = value
            for at in range(count):
                if values[at] is _MISSING:
                    if at < first_default:
                        raise TypeError(f"{name}() missing required argument "
                                        f"{fields[at]!r}")
                    values[at] = defaults[at - first_default]
            return tuple.__new__(cls, values)

        def _make(cls, iterable):
            values = tuple(iterable)
            if len(values) != count:
                raise TypeError(f"Expected {count} arguments, got {len(values)}")
            return tuple.__new__(cls, values)

        def _replace(self, **kwargs):
            values = [kwargs.pop(field, value) for field, value in zip(fields, self, strict=True)]
            if kwargs:
                raise ValueError(f"Got unexpected field names: {list(kwargs)!r}")
            return tuple.__new__(type(self), values)

        def __repr__(self):
            shown = ", ".join(f"{field}={value!r}"
                              for field, value in zip(fields, self, strict=True))
            return f"{name}({shown})"

        def _asdict(self):
            return dict(zip(fields, self, strict=True))

        def __getnewargs__(self):
            return tuple(self)

        return {"__new__": __new__, "_make": classmethod(_make), "_replace": _replace,
                "__repr__": __repr__, "_asdict": _asdict, "__getnewargs__": __getnewargs__}

    class _Missing:
        pass

    _MISSING = _Missing()

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
            defaults = tuple(namespace[f] for f in with_default)
            body = {k: v for k, v in namespace.items() if k not in fields and k not in _KEPT_OUT}
            body.update(_methods(name, fields, defaults))
            body.update({field: property(itemgetter(i), doc=f"Alias for field number {i}")
                         for i, field in enumerate(fields)})
            body.update({"__slots__": (), "_fields": fields, "__match_args__": fields,
                         "_field_defaults": dict(zip(with_default, defaults, strict=True))})
            return type(name, (tuple,), body)

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


_SHA256: Callable[[bytes], hashlib._Hash] | None = None


def sha256(data: bytes = b"") -> hashlib._Hash:
    """``hashlib.sha256(data)``, from the interpreter's own SHA-256 where it has one:
    :mod:`hashlib` loads OpenSSL's libcrypto first, which costs a warm hit more than all
    the hashing it does (a few small files). The digest is the same (tests/unit/_internal/
    test_lean.py); without the built-in module, hashlib's. Found once: a failed import
    searches every path entry again."""
    global _SHA256
    if _SHA256 is None:
        import sys

        try:
            if sys.version_info >= (3, 12):
                from _sha2 import sha256 as builtin  # type: ignore[import-not-found, unused-ignore]
            else:
                from _sha256 import sha256 as builtin  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            from hashlib import sha256 as builtin
        _SHA256 = builtin
    return _SHA256(data)


class _Decoding:
    """What the C scanner reads from :class:`json.JSONDecoder`: json.loads's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"),
                      "NaN": float("nan")}.__getitem__


_SCAN: Callable[[str, int], tuple[object, int]] | None = None
_BLANK = " \t\n\r"


def loads(data: bytes | str) -> object:
    """``json.loads(data)`` through the interpreter's C scanner, without importing
    :mod:`json` (which imports :mod:`re`, a tenth of a warm hit): the same values for the
    same text, and ValueError where json.loads raises one (tests/unit/_internal/
    test_lean.py). Without the C module, json's own."""
    global _SCAN
    if _SCAN is None:
        try:
            from _json import make_scanner  # type: ignore[attr-defined, unused-ignore]
        except ImportError:
            from json import loads as fallback

            return fallback(data)
        _SCAN = make_scanner(_Decoding())  # type: ignore[arg-type]
    if isinstance(data, (bytes, bytearray)):
        if data[:3] == b"\xef\xbb\xbf" or (data[:1] == b"\x00" or data[1:2] == b"\x00"):
            from json import loads as fallback  # a BOM or UTF-16/32: json's own detection

            return fallback(data)
        text = bytes(data).decode("utf-8", "surrogatepass")
    else:
        text = data
    if text.startswith("\ufeff"):
        from json import loads as fallback  # json refuses a BOM in a str: its own error

        return fallback(text)
    start = len(text) - len(text.lstrip(_BLANK))
    try:
        value, end = _SCAN(text, start)
    except StopIteration:
        from json import loads as fallback  # json's own error for it

        return fallback(text)
    if text[end:].strip(_BLANK):
        from json import loads as fallback

        return fallback(text)  # "Extra data": raises as json does
    return value
