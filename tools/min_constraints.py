"""The lowest version of every runtime dependency pyproject.toml declares, as pip constraints.

    python tools/min_constraints.py [pyproject.toml]          # print name==floor lines
    python tools/min_constraints.py --check [pyproject.toml]  # installed == floor, each

`make test-min` installs with these constraints and runs the unit tests: the floors are
then tested, not only declared. Every runtime dependency must say `>=FLOOR` (a marker may
follow); anything else is an error here, so a floor cannot go missing silently.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found, no-redef, unused-ignore]

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9][0-9A-Za-z.]*)"
                          r"\s*(?:,[^;]*)?(;.*)?$")


def floors(pyproject: Path) -> list[tuple[str, str, str]]:
    """(name, floor, marker) for each runtime dependency."""
    document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    found = []
    for requirement in document["project"]["dependencies"]:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"{pyproject}: {requirement!r} declares no >= floor")
        name, floor, marker = match.group(1), match.group(2), (match.group(3) or "").strip()
        found.append((name, floor, marker))
    return found


def _release(version: str) -> tuple[int, ...]:
    """``12.0`` and ``12`` alike (PEP 440 pads with zeros); anything unparsable: ()."""
    parts = [int(p) for p in re.findall(r"\d+", version.split("+")[0])]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    paths = [a for a in argv if a != "--check"]
    pyproject = Path(paths[0] if paths else "pyproject.toml")
    wrong = []
    for name, floor, marker in floors(pyproject):
        if not check:
            print(f"{name}=={floor}{' ' + marker if marker else ''}")
            continue
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            if marker:
                continue  # not for this Python
            installed = "(not installed)"
        if _release(installed) != _release(floor):
            wrong.append(f"{name}: floor {floor}, installed {installed}")
    for line in wrong:
        print(line, file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
