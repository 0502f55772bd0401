"""The configuration file's schema, as `safe-docker policy schema` prints it.

Configuration errors (exit 78) name the file, the line and the key, and their hint points
here. The text is an annotated TOML document: every key the reader in
:mod:`safedocker.policy.config` accepts, its type and its allowed values (a unit test
checks that the two agree, key for key).
"""

from __future__ import annotations

SCHEMA = """\
# safe-docker configuration: /etc/safe-docker/config.toml (system) and
# ~/.config/safe-docker/config.toml (user; SAFE_DOCKER_CONFIG_DIR overrides the directory).
# Every key is optional. An unknown key, a wrong type or a value not listed here is an
# error (exit 78) naming the file, the line and the key.

mode = "enforce"            # enforce | warn | off
unmatched = "reject"        # images no scope covers: reject | warn | accept
offline_max_age = "30d"     # how old cached signatures may be offline: <number><s|m|h|d|w>
insecure_registries = []    # ["host:port", ...]: plain-HTTP registries besides loopback
rekor_keys = []             # ["NAME", ...]: keys trusted as transparency-log (Rekor) keys
locked = false              # system file only: users may add rules, never weaken one
registry_timeout = "60s"    # total wait for one verification's registry requests (1s..1h);
                            #   under a lock the shorter of system and user wins
passthrough = []            # ["scout", ...]: docker CLI plugins docker runs unchecked
                            #   (others are refused in enforce mode); under a lock only
                            #   the system's list counts

[keys.NAME]                 # NAME: letters, digits, . _ - (up to 64); PEM in keys/NAME.pub
fingerprint = "sha256:..."  # required: sha256:<64 lowercase hex> of the DER public key
source = "..."              # optional: where the key came from (informational)
removed = true              # written by `keys remove`: rules naming the key refuse until
                            #   `keys add NAME` trusts a key of that name again

[[policy]]                  # one rule per scope; the most specific scope wins
scope = "registry/ns/*"     # required: host, repository, namespace, repo:tag, repo@digest,
                            #   or a glob (* within one path component, trailing /*)
action = "verify"           # verify | accept | reject (default verify)
keys = ["NAME"]             # trusted keys that may sign (verify: keys and/or identities)
threshold = 1               # distinct signers required, 1 .. number of keys + identities
tlog = "optional"           # required | optional | off: transparency-log proof
reference = "repository"    # digest | repository | exact: the signed docker-reference
gpu = "auto"                # auto | always | never
annotations = {}            # { KEY = "VALUE", ... }: signed annotations required
trust_root = "default"      # name of an imported Sigstore trusted root (trust-root import)
pki_roots = []              # ["ca.pem", ...]: private PKI root certificates (relative to
                            #   the config file), instead of Fulcio
pki_intermediates = []      # ["intermediate.pem", ...]: their intermediates
signatures_repository = "registry/ns/sigs"   # optional: where the .sig tag and referrers
                            #   are read (like COSIGN_REPOSITORY); default: the image's own
signed_identity = { remap = { prefix = "registry.k8s.io", signed_prefix = "..." } }
                            # optional: which signed docker-reference is accepted: remap
                            #   (one table or a list; signed_prefix_regexp = RE2 matched
                            #   whole instead of signed_prefix), or exact_reference = "...",
                            #   or exact_repository = "..."

[[policy.identities]]       # keyless signers (a certificate's issuer and subject)
issuer = "https://token.actions.githubusercontent.com"   # exact, or:
issuer_regexp = "..."       #   a Go RE2 regular expression (unanchored search, as cosign)
subject = "..."             # exact, or:
subject_regexp = "..."      #   a regular expression; exactly one of the two is required
github_workflow_repository = "owner/repo"   # optional certificate claims, exact
github_workflow_ref = "refs/heads/main"
github_workflow_trigger = "push"

[[policy.attestations]]     # in-toto attestations the image must carry
predicate_type = "https://slsa.dev/provenance/v1"   # required
keys = ["NAME"]             # who may sign it: keys and/or
[[policy.attestations.identities]]   # identities, with the keys of [[policy.identities]]
"""


def schema_keys() -> set[str]:
    """Every key the schema documents (``policy.identities.subject``…), for the tests."""
    found: set[str] = set()
    table = ""
    for line in SCHEMA.splitlines():
        text = line.split("#", 1)[0].strip()
        if text.startswith("["):
            table = text.strip("[]")
            found.add(table.replace(".NAME", ""))
        elif "=" in text:
            key = text.split("=", 1)[0].strip()
            found.add(f"{table.replace('.NAME', '')}.{key}" if table else key)
    return found
