"""``python -m safedocker`` behaves exactly like the ``safe-docker`` command."""

from __future__ import annotations

from safedocker.shim import main

if __name__ == "__main__":
    main()
