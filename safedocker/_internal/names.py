"""Docker image names without ``re``: distribution/reference's split of a name into its
registry domain and the rest (``splitDockerDomain``). reference.py's parser reads every
name through it, and the express path (which loads neither ``re`` nor reference.py) reads
the word a plan pins through it too, so that both read a name the same way."""

from __future__ import annotations

DEFAULT_REGISTRY = "docker.io"
LEGACY_REGISTRY = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"


def split_domain(name: str) -> tuple[str, str]:
    """(domain, remainder): the first path component is a registry host only when it holds
    ``.`` or ``:``, is ``localhost``, or has an uppercase letter; ``index.docker.io`` is
    ``docker.io``; Docker Hub's one-component names are under ``library/``."""
    first, sep, rest = name.partition("/")
    is_host = sep and (
        "." in first or ":" in first or first == "localhost" or first != first.lower()
    )
    if not is_host:
        domain, remainder = DEFAULT_REGISTRY, name
    else:
        domain, remainder = first, rest
    if domain == LEGACY_REGISTRY:
        domain = DEFAULT_REGISTRY
    if domain == DEFAULT_REGISTRY and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder
