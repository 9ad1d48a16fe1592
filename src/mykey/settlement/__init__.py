"""Monthly settlement in yen (issue #6)."""
