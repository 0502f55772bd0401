"""The one decision for run, create, pull, compose and build: what reaches docker, pinned."""
