"""A small hand-made world for the portal tests: exports, gate results, models, pixel events."""
