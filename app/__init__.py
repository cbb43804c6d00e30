"""Web delivery: REST API and Streamlit glue over the diamond_model core."""
