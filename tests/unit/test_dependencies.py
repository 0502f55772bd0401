"""The dependency contract, read from the source: every third-party import is declared in
pyproject.toml with a floor, and private modules of dependencies are imported only by
adapter modules (marked ``# private-import: adapter``) that have a test of their own.
`make test-min` then runs the unit tests against those floors.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "safedocker"
ADAPTER_MARK = "# private-import: adapter"
# Import name → distribution name, where they differ.
DISTRIBUTION = {"yaml": "pyyaml", "nacl": "pynacl", "pynvml": "nvidia-ml-py",
                "tomli_w": "tomli-w", "sigstore_models": "sigstore-models",
                "rfc3161_client": "rfc3161-client"}


# Standard-library modules of other Python versions than the one running the tests
# (sys.stdlib_module_names is this interpreter's): _sha2 is 3.12's _sha256.
STDLIB_ELSEWHERE = frozenset({"_sha2", "_sha256"})


def _third_party_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found
            if name.split(".")[0] not in sys.stdlib_module_names | STDLIB_ELSEWHERE
            and name.split(".")[0] != "safedocker"}


def _declared() -> dict[str, str]:
    document = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {}
    for requirement in document["project"]["dependencies"]:
        match = re.match(r"^([A-Za-z0-9._-]+)\s*>=\s*([0-9][0-9.]*)", requirement)
        assert match, f"{requirement!r} declares no >= floor"
        declared[match.group(1).lower()] = match.group(2)
    return declared


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_third_party_import_is_a_declared_dependency_with_a_floor() -> None:
    declared = _declared()
    missing = {}
    for path in MODULES:
        for name in _third_party_imports(path):
            top = name.split(".")[0]
            if DISTRIBUTION.get(top, top).lower() not in declared:
                missing[str(path.relative_to(ROOT))] = name
    assert missing == {}


def test_private_modules_of_dependencies_only_through_tested_adapters() -> None:
    adapters = []
    for path in MODULES:
        private = sorted(name for name in _third_party_imports(path)
                         if any(part.startswith("_") for part in name.split(".")))
        if not private:
            continue
        text = path.read_text()
        assert ADAPTER_MARK in text, f"{path.name} imports {private} without being an adapter"
        adapters.append(path)
    tests = "\n".join(p.read_text() for p in (ROOT / "tests" / "unit").rglob("test_*.py"))
    for path in adapters:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        assert re.search(rf"\b{re.escape(module)}\b|from {re.escape(module.rpartition('.')[0])} "
                         rf"import {path.stem}\b", tests), f"no test imports {module}"


def test_no_private_typer_import_anywhere() -> None:
    offenders = [p.name for p in MODULES if "typer._" in p.read_text()]
    assert offenders == []
