"""The pages of the Streamlit app, one file each; ``app.py`` is the entry point that lists
them with ``st.navigation``. ``common`` holds what they share."""
