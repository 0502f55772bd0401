"""Signature formats and their crypto, no I/O: cosign simple signing, sigstore bundles,
keyless/PKI certificates, Rekor SETs, cosign key files (public keys are in
:mod:`safedocker.trust.keys`).

Submodules are imported by name (``from safedocker.signatures.cosign import ...``);
this package imports nothing so that importing it costs nothing on the hot path.
"""
