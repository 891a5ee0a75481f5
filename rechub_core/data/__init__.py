"""Columnar data: tensor tables, batching, negative samplers, synthetic data."""
