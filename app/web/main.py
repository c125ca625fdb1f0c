"""Atelier's web app entry point: ``streamlit run app/web/main.py`` (``atelier app``).

No page icons: Streamlit fetches Material icons from an outside host, and the
app makes no outbound request (tests/app/test_browser.py).
"""

from __future__ import annotations

import streamlit as st

from app.web.pages import analyse_page

st.set_page_config(page_title="Atelier", layout="wide")
nav = st.navigation([st.Page(analyse_page, title="Analyse", url_path="analyse", default=True)])
nav.run()
