"""Indicator domain: pure definitions and derivations, no I/O."""
