"""matching models, one per file."""
