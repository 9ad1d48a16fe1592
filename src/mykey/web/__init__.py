"""The HTTP face of MyKey: the API (and, later, the pages)."""
