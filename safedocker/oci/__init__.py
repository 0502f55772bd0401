"""Registries (OCI distribution): media types, platforms, manifests, hosts, auth, HTTP and
the client. Submodules are imported by name; this package imports nothing."""
