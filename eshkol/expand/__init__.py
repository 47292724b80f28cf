"""Expansion of syntax objects into core forms."""
