"""Markdown for the portal (model cards), with markdown-it-py: CommonMark plus tables.

Raw HTML in the text is escaped, not passed through (`html: False`), and markdown-it's link
validation refuses `javascript:`/`vbscript:`/`data:` links, so a model card cannot carry
script into the page.
"""

from __future__ import annotations

from functools import cache

from markdown_it import MarkdownIt


@cache
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def render(md: str) -> str:
    """HTML for a Markdown text."""
    return _parser().render(md)
