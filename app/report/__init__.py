"""The self-contained HTML report."""

from .writer import render_forensic, render_report

__all__ = ["render_forensic", "render_report"]
