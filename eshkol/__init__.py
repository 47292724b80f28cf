"""Eshkol: a Scheme for scientific computing, compiled through MLIR."""

__version__ = "0.1.0"
