"""Core forms and the analyses on them (free variables, closure and assignment conversion)."""
