"""Realistic landing data for the three sources, with planted duplicates, dirt and ground truth.

Public surface: `generate(out, customers, days, seed, start, truth_path=None) -> str`.
See docs/generator.md for the generative model.
"""

from personalization.generate.run import generate

__all__ = ["generate"]
