"""The MyKey Platform half: cards (JPKI-style proofs), MyKey IDs, links to providers."""
