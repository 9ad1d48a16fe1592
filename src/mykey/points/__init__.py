"""Municipal points: programs, grants, conversions, spending (R3–R6), all on the ledger."""
