"""Consuming the other services' events into facts."""
