"""OCI and Docker media types, and the size limits on what a registry may send.

Everything a registry says is bounded before anyone reads it; a document that is not what
its media type says is a :func:`malformed` refusal.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from safedocker.errors import RegistryError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

# A managed plugin's config (docker plugin push): its manifest is an image manifest.
PLUGIN_CONFIG = "application/vnd.docker.plugin.v1+json"

INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
IMAGE_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
MANIFEST_MEDIA_TYPES = INDEX_MEDIA_TYPES | IMAGE_MEDIA_TYPES
SCHEMA1_MEDIA_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST))
# Content types that say nothing; the JSON's own mediaType must then name the type.
GENERIC_CONTENT_TYPES = frozenset(
    {"", "application/json", "application/octet-stream", "text/plain"}
)

MiB = 1024 * 1024
MANIFEST_MAX = 4 * MiB
CONFIG_MAX = 4 * MiB
SIGNATURE_LAYER_MAX = 1 * MiB
TOKEN_RESPONSE_MAX = 1 * MiB
ERROR_BODY_MAX = 64 * 1024
# The referrers listing (API pages or the tag schema's index), bounded as a whole: a
# registry may not make one verification hold more than this, however it pages.
REFERRERS_PAGE_MAX = 1 * MiB  # one page of the referrers API
REFERRERS_BYTES_MAX = 4 * MiB  # every page together
REFERRERS_PAGES_MAX = 16
REFERRERS_ENTRIES_MAX = 10_000  # descriptors listed, every page together
REFERRERS_KEPT_MAX = 256  # descriptors kept (those that can matter to the caller)
REDIRECTS_MAX = 5


def malformed(where: str, why: str) -> RegistryError:
    from safedocker.errors import RegistryError  # not at import: the warm path reads constants

    return RegistryError(f"registry served a malformed manifest for {where}", why=why)


def bare_content_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()
