"""safe-docker: verify image signatures and pin digests before docker pulls or runs them."""

from __future__ import annotations

__version__ = "0.1.0"
