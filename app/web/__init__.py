"""The Streamlit web app (run with ``atelier app``)."""
