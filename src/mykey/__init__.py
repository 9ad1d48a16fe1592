"""MyKey Platform and Municipal Point Cloud."""

__version__ = "0.1.0"
