"""The verdict: signature material and how to fetch it, one rule's evaluation, and the
verifier that orchestrates them. Submodules are imported by name; this package imports nothing."""
