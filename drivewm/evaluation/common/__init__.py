"""Pieces every evaluation shares: versioned protocols (`config`), confidence intervals (`stats`),
the results.json writer and the Markdown/HTML tables and pages (`report`)."""
