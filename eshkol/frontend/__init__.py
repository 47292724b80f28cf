"""Core forms → eshkol dialect."""
