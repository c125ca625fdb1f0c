"""Atelier's web app entry point: ``streamlit run app/web/main.py`` (``atelier app``).

No page icons: Streamlit fetches Material icons from an outside host, and the
app makes no outbound request (tests/app/test_browser.py).
"""

from __future__ import annotations

import streamlit as st

from app.web import state

st.set_page_config(page_title="Atelier", layout="wide")

PAGES = [
    st.Page("views/images.py", title="1. Images", url_path="images", default=True),
    st.Page("views/equalize.py", title="2. Equalize", url_path="equalize"),
    st.Page("views/align.py", title="3. Align", url_path="align"),
    st.Page("views/similarity.py", title="4. Similarity", url_path="similarity"),
    st.Page("views/clusters.py", title="5. Clusters", url_path="clusters"),
    st.Page("views/compare.py", title="6. Compare", url_path="compare"),
    st.Page("views/query.py", title="7. Query", url_path="query"),
    st.Page("views/export.py", title="8. Export", url_path="export"),
]

nav = st.navigation(PAGES)
restored, not_restored = state.restore_from_address()
with st.sidebar:
    st.title("Atelier")
    st.caption("Structural similarity of artworks: which copies come from the same template.")
    ticks = st.empty()  # filled after a run below, so the ticks show its result
    if st.button(
        "Run analysis",
        type="primary",
        help="Run every step with the current settings (from any page)",
    ) or st.session_state.pop("run_now", False):
        state.run()
    done = state.step_status()
    ticks.markdown("  \n".join(f"{'✔' if ok else '○'} {name}" for name, ok in done.items()))
    res = state.result()
    if res is not None:
        st.success(f"{len(res.ids)} images, {res.clustering.k} clusters")
    freshness = st.empty()  # filled after the page ran: its controls may change the settings
    if restored:
        st.info(f"Restored after the reload: {restored}.")
    if not_restored:
        st.warning(f"Not restored from the address: {not_restored}.")
    gone = state.released()
    if gone:
        st.warning(
            "This session's images and result were released to free the server's memory "
            f"({gone}). Reload the page to bring back a folder's images and result "
            "(cached features make it quick); uploaded files must be uploaded again."
        )
nav.run()
state.to_address()
if res is not None and state.result() is res:
    problem = state.out_of_date(res)
    if problem:
        freshness.warning(problem)
