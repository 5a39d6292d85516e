"""Probe sets: the record schema and loader, quality checks, importers, user-imported sets."""
