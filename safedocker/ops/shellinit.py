"""``safe-docker shell-init SHELL``: the shell code that makes ``docker`` a thin function.

The code itself lives in ``shell/safe-docker.{bash,zsh,fish}``: in a wheel those files are
packaged as ``safedocker/_shell/`` (a hatch force-include); in a source checkout they are
read from ``shell/`` next to the package. Either way :func:`render` returns the file's text.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from safedocker.errors import UsageError

SHELLS = {"bash": "safe-docker.bash", "zsh": "safe-docker.zsh", "fish": "safe-docker.fish"}

# Where the files sit inside an installed package (see pyproject's force-include).
PACKAGED_DIR = "_shell"
SOURCE_DIR = Path(__file__).resolve().parents[2] / "shell"


def render(shell: str) -> str:
    """The integration code for ``shell`` (``bash``, ``zsh``, ``fish``, or a path to one)."""
    name = SHELLS.get(os.path.basename(shell.strip()))
    if name is None:
        raise UsageError(
            f"unsupported shell: {shell or '(none)'}",
            why=f"shell-init knows {', '.join(SHELLS)}",
            hint='use eval "$(safe-docker shell-init bash)" or shell-init zsh|fish',
        )
    return _read(name)


def _read(name: str) -> str:
    packaged = resources.files("safedocker").joinpath(PACKAGED_DIR).joinpath(name)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    source = SOURCE_DIR / name
    if source.is_file():
        return source.read_text(encoding="utf-8")
    raise UsageError(
        f"shell integration file {name} is missing",
        why=f"not packaged as safedocker/{PACKAGED_DIR}/{name} and no {source}",
        hint="reinstall safe-docker",
    )
