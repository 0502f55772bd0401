"""The library side of safe-docker's own commands: doctor, sign, shell-init.
Submodules are imported by name; this package imports nothing."""
