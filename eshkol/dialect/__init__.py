"""The ``eshkol`` MLIR dialect: IRDL definition, typed builders and the primitive registry."""
