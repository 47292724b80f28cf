"""Command-line tools: eshkol, eshkol-opt, eshkol-translate."""
