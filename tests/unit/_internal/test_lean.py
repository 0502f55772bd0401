"""The hot path's stand-ins for typing.NamedTuple, re.compile, hashlib.sha256 and
urllib.parse's quoting behave as the originals do."""

from __future__ import annotations

import hashlib
import random
import re
import subprocess
import sys
from typing import NamedTuple as TypingNamedTuple
from urllib.parse import quote as stdlib_quote
from urllib.parse import urlencode

import pytest

from safedocker._internal.lean import LazyPattern, NamedTuple, sha256
from safedocker._internal.minihttp import form, quote


class Lean(NamedTuple):
    """A value."""

    name: str
    size: int = 0
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name}:{self.size}"

    def bumped(self) -> Lean:
        return self._replace(size=self.size + 1)


class Typed(TypingNamedTuple):
    name: str
    size: int = 0
    tags: tuple[str, ...] = ()


def test_a_lean_namedtuple_has_the_fields_defaults_and_methods_of_typings() -> None:
    value = Lean("a")
    assert tuple(value) == tuple(Typed("a"))
    assert tuple(value) == ("a", 0, ())
    assert Lean._fields == Typed._fields
    assert Lean._field_defaults == Typed._field_defaults
    assert value.label == "a:0" and value.bumped().size == 1
    assert value._asdict() == Typed("a")._asdict()
    assert Lean("a", 2, ("x",)) == Lean(name="a", size=2, tags=("x",))
    assert hash(Lean("a")) == hash(Typed("a"))
    assert Lean.__doc__ == "A value."
    assert Lean.__name__ == "Lean" and Lean.__module__ == __name__
    assert isinstance(value, tuple)


def test_a_lean_namedtuple_is_immutable_and_has_no_instance_dict() -> None:
    value = Lean("a")
    with pytest.raises(AttributeError):
        value.name = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        value.other = 1  # type: ignore[attr-defined]


def test_a_lean_namedtuple_refuses_a_field_without_default_after_one_with() -> None:
    with pytest.raises(TypeError):
        class Bad(NamedTuple):
            a: int = 0
            b: int  # type: ignore[misc]


def test_a_lazy_pattern_matches_as_the_compiled_pattern_and_compiles_once() -> None:
    lazy = LazyPattern(r"(?P<k>[a-z]+)=(\d+)", re.ASCII)
    plain = re.compile(r"(?P<k>[a-z]+)=(\d+)", re.ASCII)
    for text in ("a=1", "ab=12x", " a=1", "A=1", "", "é=1"):
        for method in ("fullmatch", "match", "search"):
            got, want = getattr(lazy, method)(text), getattr(plain, method)(text)
            assert (got and got.groups()) == (want and want.groups())
    assert lazy.sub("*", "a=1 b=2") == plain.sub("*", "a=1 b=2")
    assert lazy.compiled() is lazy.compiled()


def test_importing_lean_imports_neither_re_nor_typing_nor_hashlib() -> None:
    code = ("import sys; import safedocker._internal.lean; "
            "print(sorted({'re', 'typing', 'hashlib', '_hashlib'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("size", [0, 1, 55, 56, 64, 1000, 100_000])
def test_sha256_is_hashlibs(size: int) -> None:
    data = random.Random(size).randbytes(size)  # noqa: S311 - test data
    assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    incremental = sha256()
    incremental.update(data[: size // 2])
    incremental.update(data[size // 2:])
    assert incremental.digest() == hashlib.sha256(data).digest()


def test_quote_and_form_write_what_urllib_writes() -> None:
    chars = "abcXYZ019 _.-~/:@%+&=?#é€\x00\n\t'\"日"
    rng = random.Random(7)  # noqa: S311 - test data
    for _ in range(3000):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 12)))
        for safe in ("", "/", "/:@", ":"):
            assert quote(text, safe) == stdlib_quote(text, safe=safe)
        fields = {text: text[::-1], "repo": text}
        assert form(fields) == urlencode(fields)
