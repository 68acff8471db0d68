"""Exporters: one module per target behind a small shared interface (see base.py)."""
