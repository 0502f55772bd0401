"""Trust anchors: public keys, the trusted-key store, Sigstore trusted roots.
Submodules are imported by name; this package imports nothing."""
