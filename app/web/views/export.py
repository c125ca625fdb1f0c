"""The export page (a script for st.Page; the page itself lives in app.web.pages_forensic)."""

from app.web.pages_forensic import export_page

export_page()
