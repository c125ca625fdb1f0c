"""The query page (a script for st.Page; the page itself lives in app.web.pages_forensic)."""

from app.web.pages_forensic import query_page

query_page()
