"""The strict tar reader refuses every member kind on which Python's tarfile and Go's
archive/tar disagree, bounds every size before reading it, and the writer's plain ustar
is read back the same by Python's tarfile and by the reader."""

from __future__ import annotations

import io
import tarfile
from typing import TYPE_CHECKING

import pytest

from safedocker._internal import ustar
from safedocker._internal.ustar import Kind, Limits, TarFormatError, TarReader, TarWriter

if TYPE_CHECKING:
    from pathlib import Path

    from safedocker._internal.ustar import Member

ROOMY = Limits(members=100, member_size=1 << 30, total=1 << 31)


def _tar(files: dict[str, bytes], fmt: int = tarfile.USTAR_FORMAT,
         pax_headers: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt, pax_headers=pax_headers) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _single(info: tarfile.TarInfo) -> bytes:
    """A tar of one data-less member, as Python writes it."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info)
    return out.getvalue()


def read_all(data: bytes, limits: Limits = ROOMY, *, lenient: bool = False
             ) -> list[tuple[Member, bytes]]:
    reader = TarReader(io.BytesIO(data), limits, lenient=lenient)
    found = []
    while (member := reader.next()) is not None:
        found.append((member, b"".join(reader.chunks())))
    return found


def refused(data: bytes, why: str, *, lenient: bool = False, limits: Limits = ROOMY) -> None:
    with pytest.raises(TarFormatError) as info:
        read_all(data, limits, lenient=lenient)
    assert why in str(info.value), str(info.value)


class CountingStream(io.RawIOBase):
    """A stream of ``header`` followed by endless zeros that counts what was read."""

    def __init__(self, header: bytes) -> None:
        self.data = header
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = len(buffer)
        start = self.read_bytes
        chunk = self.data[start:start + n].ljust(n, b"\x00")
        buffer[:n] = chunk
        self.read_bytes += n
        return n


def _header(name: str | bytes, size: int, typeflag: bytes = b"0") -> bytes:
    """A ustar header with any name and type (the writer itself refuses such names)."""
    block = bytearray(ustar.header("placeholder", size))
    block[0:100] = (name.encode() if isinstance(name, str) else name).ljust(100, b"\x00")
    block[156:157] = typeflag
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    return bytes(block)


# --- what both readers read the same way --------------------------------------------------------


def test_python_ustar_and_gnu_archives_of_files_and_directories_are_read() -> None:
    for fmt in (tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT):
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
            directory = tarfile.TarInfo("dir")
            directory.type = tarfile.DIRTYPE
            tar.addfile(directory)
            info = tarfile.TarInfo("dir/a.json")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
        found = read_all(out.getvalue())
        assert [(m.name, m.kind, data) for m, data in found] == [
            ("dir", Kind.DIRECTORY, b""), ("dir/a.json", Kind.FILE, b"abc")]


def test_the_writer_round_trips_through_python_tarfile_and_the_reader() -> None:
    long_name = "a" * 120 + "/" + "b" * 90  # needs the ustar prefix field
    out = io.BytesIO()
    writer = TarWriter(out)
    writer.directory("blobs")
    writer.file("blobs/one", b"1" * 700)
    writer.begin(long_name, 5)
    writer.write(b"he")
    writer.write(b"llo")
    writer.end()
    writer.close()
    data = out.getvalue()
    assert len(data) % ustar.RECORD == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
        assert [(m.name, m.type, m.size) for m in members] == [
            ("blobs", tarfile.DIRTYPE, 0), ("blobs/one", tarfile.REGTYPE, 700),
            (long_name, tarfile.REGTYPE, 5)]
        assert all(m.pax_headers == {} for m in members)
        assert tar.extractfile(long_name).read() == b"hello"  # type: ignore[union-attr]
    assert [(m.name, d) for m, d in read_all(data)] == [
        ("blobs", b""), ("blobs/one", b"1" * 700), (long_name, b"hello")]


def test_sizes_from_8_gib_are_written_base_256_as_go_and_python_read_them() -> None:
    size = 8 * 1024**3 + 5
    block = ustar.header("big", size)
    assert block[124] == 0x80
    assert tarfile.TarInfo.frombuf(block, "utf-8", "strict").size == size
    stream = CountingStream(block)
    member = TarReader(stream, Limits(1, 1 << 40, 1 << 40)).next()  # type: ignore[arg-type]
    assert member is not None and member.size == size
    assert stream.read_bytes == ustar.BLOCK  # the header only


def test_a_writer_refuses_to_write_less_or_more_than_announced() -> None:
    writer = TarWriter(io.BytesIO())
    writer.begin("x", 3)
    with pytest.raises(ValueError):
        writer.write(b"toolong")
    with pytest.raises(ValueError):
        writer.end()


# --- the parser differentials: refused ----------------------------------------------------------


def test_a_pax_global_header_is_refused_even_when_lenient() -> None:
    # Python applies a global `path` to the members that follow; Go ignores it.
    data = _tar({"evil.json": b"{}"}, tarfile.PAX_FORMAT, pax_headers={"path": "manifest.json"})
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert tar.getnames() == ["manifest.json"]  # what Python would have believed
    refused(data, "PAX global header")
    refused(data, "PAX global header", lenient=True)


@pytest.mark.parametrize("record", ["path", "linkpath", "size", "GNU.sparse.map"])
def test_a_pax_header_that_renames_or_resizes_is_refused(record: str) -> None:
    info = tarfile.TarInfo("plain")
    info.size = 2
    info.pax_headers = {record: "7" if record == "size" else "other"}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"ab"))
    refused(out.getvalue(), "PAX extended header")
    refused(out.getvalue(), f"sets {record!r}", lenient=True)


def test_a_lenient_reader_skips_pax_records_of_times_and_owners() -> None:
    info = tarfile.TarInfo("layer.tar")
    info.size = 2
    info.pax_headers = {"mtime": "1.5", "uname": "r\u00f6ot", "SCHILY.xattr.user.x": "y"}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(b"ab"))
    [(member, data)] = read_all(out.getvalue(), lenient=True)
    assert (member.name, data) == ("layer.tar", b"ab")
    refused(out.getvalue(), "PAX extended header")


def test_a_huge_pax_header_is_refused_before_it_is_read() -> None:
    stream = CountingStream(_header("pax", 1 << 30, b"x"))
    with pytest.raises(TarFormatError, match="PAX header has"):
        TarReader(stream, ROOMY, lenient=True).next()  # type: ignore[arg-type]
    assert stream.read_bytes == ustar.BLOCK


def test_gnu_long_names_and_sparse_members_are_refused() -> None:
    long = _tar({"n" * 150: b"x"}, tarfile.GNU_FORMAT)
    refused(long, "GNU long name", lenient=True)
    refused(_header("sparse", 0, b"S") + b"\x00" * 1024, "GNU sparse file", lenient=True)


def test_a_gnu_header_with_extension_fields_is_refused() -> None:
    block = bytearray(_tar({"a": b""}, tarfile.GNU_FORMAT)[: ustar.BLOCK])
    block[483:495] = b"%011o\x00" % 4096  # GNU realsize of an old-style sparse file
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\x00 " % sum(block)
    refused(bytes(block) + b"\x00" * 1024, "extension fields")


@pytest.mark.parametrize(("typeflag", "kind"), [
    (tarfile.SYMTYPE, "symbolic link"), (tarfile.LNKTYPE, "hard link"),
    (tarfile.CHRTYPE, "character device"), (tarfile.FIFOTYPE, "FIFO"),
    (tarfile.CONTTYPE, "contiguous file"),
])
def test_links_devices_and_other_kinds_are_refused(typeflag: bytes, kind: str) -> None:
    info = tarfile.TarInfo("m")
    info.type, info.linkname = typeflag, "target"
    refused(_single(info), kind)


def test_a_lenient_reader_reports_links_without_following_them() -> None:
    link = tarfile.TarInfo("b/layer.tar")
    link.type, link.linkname = tarfile.SYMTYPE, "../a/layer.tar"
    [(member, data)] = read_all(_single(link), lenient=True)
    assert (member.kind, member.size, data) == (Kind.LINK, 0, b"")


def test_a_directory_with_data_is_refused() -> None:
    # Go skips a directory's data; Python reads it as the next header.
    refused(_header("d", 512, b"5") + b"\x00" * 512 + b"\x00" * 1024, "directory with data")


def test_a_regular_file_whose_name_ends_with_a_slash_is_refused() -> None:
    refused(_header("f/", 0, b"\x00") + b"\x00" * 1024, "ends with '/'")


@pytest.mark.parametrize(("name", "why"), [
    (b"/etc/passwd", "absolute"), (b"a/../../b", "plain relative"), (b"./index.json",
                                                                       "plain relative"),
    (b"a//b", "plain relative"), (b"a\\b", "absolute"), (b"a\nb", "control"),
    (b"\xff\xfe", "not UTF-8"),
])
def test_names_that_are_not_plain_relative_utf8_paths_are_refused(name: bytes, why: str
                                                                   ) -> None:
    refused(_header(name, 0) + b"\x00" * 1024, why)


def test_a_bad_checksum_or_an_old_v7_header_is_refused() -> None:
    good = ustar.header("a", 0)
    damaged = bytearray(good)
    damaged[0:1] = b"b"
    refused(bytes(damaged) + b"\x00" * 1024, "checksum")
    v7 = bytearray(good)
    v7[257:265] = b"\x00" * 8
    v7[148:156] = b" " * 8
    v7[148:156] = b"%06o\x00 " % sum(v7)
    refused(bytes(v7) + b"\x00" * 1024, "neither ustar nor GNU")


def test_truncation_and_a_missing_or_broken_end_marker_are_refused() -> None:
    data = _tar({"a": b"x" * 1000})
    refused(data[:1000], "truncated")
    refused(data[:1536], "truncated")  # header and data, no end marker
    refused(data[:1536] + b"\x00" * 512 + ustar.header("b", 0), "followed by data")


# --- limits, checked before reading ------------------------------------------------------------


def test_a_member_over_the_size_limit_is_refused_before_its_data_is_read() -> None:
    stream = CountingStream(ustar.header("index.json", 1 << 30))
    reader = TarReader(stream, Limits(10, 1 << 20, 1 << 40))  # type: ignore[arg-type]
    with pytest.raises(TarFormatError, match="more than 1048576"):
        reader.next()
    assert stream.read_bytes == ustar.BLOCK


def test_read_member_checks_its_cap_before_reading() -> None:
    stream = CountingStream(ustar.header("index.json", 1 << 30))
    reader = TarReader(stream, ROOMY)  # type: ignore[arg-type]
    assert reader.next() is not None
    with pytest.raises(TarFormatError, match="more than 4096"):
        reader.read_member(4096)
    assert stream.read_bytes == ustar.BLOCK


def test_member_count_and_total_size_are_bounded() -> None:
    many = _tar({f"m{i}": b"" for i in range(5)})
    refused(many, "more than 4 members", limits=Limits(4, 1 << 20, 1 << 20))
    big = _tar({"a": b"x" * 4000, "b": b"y" * 4000})
    refused(big, "more than 6000 bytes", limits=Limits(10, 1 << 20, 6000))


def test_a_sparse_file_declaring_a_huge_member_is_refused_in_constant_memory(
        tmp_path: Path) -> None:
    path = tmp_path / "sparse.tar"
    with open(path, "wb") as out:
        out.write(ustar.header("index.json", 1 << 30))
        out.truncate(ustar.BLOCK + (1 << 30) + 1024)
    with open(path, "rb") as handle:
        reader = TarReader(handle, Limits(10, 1 << 20, 1 << 40))
        with pytest.raises(TarFormatError):
            reader.next()
        assert handle.tell() == ustar.BLOCK


def test_a_signed_checksum_as_old_tars_wrote_it_is_accepted() -> None:
    block = bytearray(_header("caf\u00e9".encode(), 0))
    rest = block[:148] + block[156:]
    signed = sum(rest) + 8 * 32 - 256 * sum(1 for b in rest if b > 127)
    block[148:156] = b"%06o\x00 " % signed
    [(member, _)] = read_all(bytes(block) + b"\x00" * 1024)
    assert member.name == "caf\u00e9"
