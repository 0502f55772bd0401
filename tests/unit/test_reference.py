from __future__ import annotations

import pytest

from safedocker.errors import UsageError
from safedocker.reference import Digest, ImageRef, parse_reference

SHA = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("ubuntu", "docker.io", "library/ubuntu", None, None),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
        ("pytorch/pytorch:2.7-cuda11.8", "docker.io", "pytorch/pytorch", "2.7-cuda11.8", None),
        ("index.docker.io/foo", "docker.io", "library/foo", None, None),
        ("index.docker.io/a/b", "docker.io", "a/b", None, None),
        ("docker.io/library/ubuntu", "docker.io", "library/ubuntu", None, None),
        ("localhost:5000/a/b:t", "localhost:5000", "a/b", "t", None),
        ("localhost/x", "localhost", "x", None, None),
        ("Foo.com/bar", "Foo.com", "bar", None, None),  # uppercase host is kept
        ("UPPER/x", "UPPER", "x", None, None),  # uppercase first component is a host
        ("127.0.0.1:5000/x/y_z.w-v:T_1", "127.0.0.1:5000", "x/y_z.w-v", "T_1", None),
        ("[::1]:5000/x", "[::1]:5000", "x", None, None),
        ("a__b/c---d", "docker.io", "a__b/c---d", None, None),
        (f"ubuntu@{SHA}", "docker.io", "library/ubuntu", None, SHA),
        (f"x:t@{SHA}", "docker.io", "library/x", "t", SHA),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),  # no "/": a tag
    ],
)
def test_normalizes_like_docker(text: str, registry: str, repository: str, tag: str | None,
                                digest: str | None) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)
    assert (str(ref.digest) if ref.digest else None) == digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Ubuntu", "must be lowercase"),
        ("ab" * 32, "64-byte hexadecimal"),
        ("x:", "invalid reference format"),
        ("-x", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("x@sha256:abc", "invalid reference format"),
        ("x@md5:" + "a" * 32, "invalid digest"),
        ("x:" + "t" * 129, "invalid reference format"),
        ("a/" * 130 + "b", "255"),
    ],
)
def test_rejects_invalid_references(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_reference(text)
    assert message in caught.value.line()
    assert caught.value.exit_code == 2


def test_pinned_and_familiar_forms() -> None:
    ref = parse_reference("ubuntu:22.04")
    digest = Digest.parse(SHA)
    assert ref.pinned(digest) == f"docker.io/library/ubuntu@{SHA}"
    assert ref.familiar_name == "ubuntu"
    assert ref.tagged == "docker.io/library/ubuntu:22.04"
    assert parse_reference("ghcr.io/a/b").familiar_name == "ghcr.io/a/b"
    assert parse_reference("a/b").familiar_name == "a/b"
    assert str(ImageRef("docker.io", "library/x", "t", digest)) == f"docker.io/library/x:t@{SHA}"


def test_digest_is_computed_not_claimed() -> None:
    digest = Digest.of(b"hello")
    assert str(digest) == "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert digest.matches(b"hello")
    assert not digest.matches(b"hello ")
    assert digest.tag_prefix == "sha256-" + digest.hex
    with pytest.raises(UsageError):
        Digest.parse("sha256:" + "A" * 64)  # uppercase hex is not canonical


def test_references_are_frozen_values_equal_and_hashed_by_their_fields() -> None:
    from safedocker.reference import Digest, ImageRef

    digest = Digest("sha256", "a" * 64)
    ref = ImageRef("docker.io", "library/ubuntu", "22.04", digest)
    same = ImageRef("docker.io", "library/ubuntu", tag="22.04", digest=Digest("sha256", "a" * 64))
    assert ref == same and hash(ref) == hash(same) and len({ref, same}) == 1
    assert ref != ImageRef("docker.io", "library/ubuntu", "22.04")
    assert ref != ("docker.io", "library/ubuntu", "22.04", digest)  # not a tuple
    assert repr(digest) == f"Digest(algorithm='sha256', hex='{'a' * 64}')"
    with pytest.raises(AttributeError):
        ref.tag = "latest"
    match ref:
        case ImageRef(registry, repository, tag, Digest(algorithm, _)):
            assert (registry, repository, tag, algorithm) == (
                "docker.io", "library/ubuntu", "22.04", "sha256")
        case _:
            raise AssertionError("no match")
