"""The docker CLI side: its argv grammar, finding and exec'ing it, and the daemon through it.

Standard library only; imports nothing of safe-docker above errors, reference and _internal.
"""
