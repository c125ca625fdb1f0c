"""The self-contained HTML report."""

from .writer import render_report

__all__ = ["render_report"]
