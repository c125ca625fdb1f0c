"""The compare page (a script for st.Page; the page itself lives in app.web.pages_forensic)."""

from app.web.pages_forensic import compare_page

compare_page()
