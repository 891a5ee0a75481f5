"""multi-task models, one per file."""
