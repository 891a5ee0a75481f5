"""Peer libraries the benchmark compares against, each in its own virtual environment."""
