"""Signature formats: cosign simple signing, keys, Rekor SETs, cosign key files.

Submodules are imported by name (``from safedocker.signatures.cosign import ...``);
this package imports nothing so that importing it costs nothing on the hot path.
"""
