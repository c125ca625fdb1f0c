"""The equalize page (a script for st.Page; the page itself lives in app.web.pages_data)."""

from app.web.pages_data import equalize_page

equalize_page()
