"""Grades deep-learning notebooks by measuring what the submitted code and models do."""

__version__ = "0.1.0"
