"""Aggregation over seeds and significance tests."""
