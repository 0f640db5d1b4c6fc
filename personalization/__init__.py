"""Nightly email-personalization warehouse."""

__version__ = "0.1.0"
