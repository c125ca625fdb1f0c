"""Upload limits of the web app (count, per-file MB, total MB); environment variables
override. A light module: ``atelier app`` passes the per-file limit to Streamlit's
uploader, so the size the uploader states is the one the app enforces."""

from __future__ import annotations

import os

__all__ = ["LIMITS"]

LIMITS = {
    "max_files": int(os.environ.get("ATELIER_MAX_UPLOAD_FILES", "500")),
    "max_file_mb": float(os.environ.get("ATELIER_MAX_UPLOAD_MB", "50")),
    "max_total_mb": float(os.environ.get("ATELIER_MAX_UPLOAD_TOTAL_MB", "1000")),
}
