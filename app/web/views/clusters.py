"""The clusters page (a script for st.Page; the page itself lives in app.web.pages_analysis)."""

from app.web.pages_analysis import clusters_page

clusters_page()
