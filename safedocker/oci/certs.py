"""The CAs docker trusts for one registry's TLS besides the system's: every ``*.crt`` file
in ``/etc/docker/certs.d/<host[:port]>/``, as dockerd reads that directory
(``registry.ReadCertsDirectory``: each file's PEM certificates join the system's roots, for
that registry alone). Both the full path and the warm path trust them, for that registry
only, so that a registry docker reaches with a private CA placed there is reached by
safe-docker too. The directory's client certificates (``*.cert`` with ``*.key``) are
docker's alone: a registry that asks for one is unreachable here. Standard library only:
the warm path reads it.
"""

from __future__ import annotations

import os

from safedocker.oci.hosts import DOCKER_HUB_ALIASES

CERTS_D = "/etc/docker/certs.d"  # rootful dockerd's; a rootless daemon's is not read
CAS_MAX = 64  # files read for one registry


def registry_cas(registry: str, root: str | None = None) -> tuple[str, ...]:
    """The ``*.crt`` files (regular files, links followed as docker follows them) under
    ``<root>/<registry>``, in name order; () when there is no such directory."""
    base = CERTS_D if root is None else root
    if registry in ("", ".", "..") or "/" in registry or "\0" in registry:
        return ()  # a directory name only: never a path out of the certs dir
    if registry.lower() in DOCKER_HUB_ALIASES:
        return ()  # dockerd gives Docker Hub's own endpoint the system's CAs alone
    directory = os.path.join(base, registry)
    try:
        with os.scandir(directory) as entries:
            names = sorted(e.name for e in entries if e.name.endswith(".crt") and e.is_file())
    except OSError:
        return ()
    return tuple(os.path.join(directory, name) for name in names[:CAS_MAX])
