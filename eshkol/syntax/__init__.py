"""Lexical layer: reader, datums with source locations, printer, diagnostics."""
