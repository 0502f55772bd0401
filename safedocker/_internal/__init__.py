"""Small standard-library helpers shared by every layer; they import only ``errors``."""
