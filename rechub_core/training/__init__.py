"""Trainers and losses; models never hold an optimizer."""
