"""Lowering of the eshkol dialect to the targets (CPU: the LLVM dialect and the C runtime)."""
