"""The verification cache: the sqlite store and its export/import file format.
Submodules are imported by name; this package imports nothing."""
