"""Indicators HTTP routers."""
