"""The way every image into docker goes: run/create/pull and compose argv → verification →
the hand-off that runs exactly what was verified. Submodules are imported by name."""
