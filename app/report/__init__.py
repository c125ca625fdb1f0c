"""The self-contained HTML report."""

from .writer import input_thumbnail, render_forensic, render_report

__all__ = ["input_thumbnail", "render_forensic", "render_report"]
