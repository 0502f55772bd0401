"""The library side of safe-docker's own commands: what each does and what it prints,
without typer (cli.py only wires them). Submodules are imported by name; this package
imports nothing."""
