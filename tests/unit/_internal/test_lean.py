"""The hot path's stand-ins for typing.NamedTuple, re.compile, hashlib.sha256 and
urllib.parse's quoting behave as the originals do."""

from __future__ import annotations

import hashlib
import json
import pickle
import random
import re
import subprocess
import sys
from typing import TYPE_CHECKING
from typing import NamedTuple as TypingNamedTuple
from urllib.parse import quote as stdlib_quote
from urllib.parse import urlencode

import pytest

from safedocker._internal.lean import LazyPattern, NamedTuple, loads, sha256
from safedocker._internal.minihttp import form, quote

if TYPE_CHECKING:
    from collections.abc import Callable


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


def test_a_lean_namedtuple_is_built_called_copied_and_shown_as_typings() -> None:
    for kind in (Lean, Typed):
        assert kind("a", tags=("x",)) == ("a", 0, ("x",))
        assert kind._make(["b", 1, ()]) == ("b", 1, ())
        assert kind("a")._replace(size=3) == ("a", 3, ())
        with pytest.raises(TypeError):
            kind()  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            kind("a", 1, (), "extra")  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            kind("a", name="b")  # type: ignore[misc]
        with pytest.raises(TypeError):
            kind("a", colour="red")  # type: ignore[call-arg]
        with pytest.raises(ValueError):
            kind("a")._replace(colour="red")  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            kind._make(["too", "short"])
    assert repr(Lean("a", 1)) == "Lean(name='a', size=1, tags=())"
    assert repr(Typed("a", 1)) == "Typed(name='a', size=1, tags=())"
    assert pickle.loads(pickle.dumps(Lean("p", 2))) == Lean("p", 2)  # noqa: S301 - ours
    match Lean("m", 5):
        case Lean(name, size):
            assert (name, size) == ("m", 5)
        case _:
            pytest.fail("a class pattern did not match")
    assert Lean.name.__doc__ == Typed.name.__doc__


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


def _outcome(parse: Callable[[str | bytes], object], text: str | bytes) -> tuple[str, str]:
    try:
        return "value", repr(parse(text))
    except ValueError as e:
        return "error", type(e).__name__
    except RecursionError:
        return "error", "RecursionError"


@pytest.mark.parametrize("text", [
    '{"a": 1}', ' [1, 2.5, "x", null, true, false, {"b": []}] \n', '"\\u00e9\\ud800"', "1e400",
    "NaN", "-Infinity", '{"a": 1, "a": 2}', "-0", "[1, 2", '{"a": 1} x', "", " ", "tru",
    "\ufeff{}", b"\xef\xbb\xbf{}", b'{"x": "\xc3\xa9"}', b"\xff", '"\x01"', "[" * 100_000,
    b'\x00{\x00}', "01", "[1,]", '{"a" 1}', "\t\r\n 7 \t",
])
def test_loads_reads_what_json_loads_reads_and_refuses_what_it_refuses(
        text: str | bytes) -> None:
    assert _outcome(loads, text) == _outcome(json.loads, text)


def test_loads_agrees_with_json_on_random_documents() -> None:
    rng = random.Random(11)  # noqa: S311 - test data
    pieces = ['{', '}', '[', ']', ',', ':', '"a"', '"\\n"', '"é"', "1", "-2.5e3", "true",
              "null", " ", "\n", '"\\u0041"', "0", '"']
    for _ in range(5000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        assert _outcome(loads, text) == _outcome(json.loads, text), text


def test_importing_lean_and_loading_json_with_it_imports_neither_json_nor_re() -> None:
    code = ("import sys; from safedocker._internal.lean import loads; "
            "assert loads(b'{\"a\": [1, 2.5, null]}') == {'a': [1, 2.5, None]}; "
            "print(sorted({'re', 'json', 'operator'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
