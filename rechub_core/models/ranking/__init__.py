"""ranking models, one per file."""
