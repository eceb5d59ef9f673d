"""Indicators SQL."""
