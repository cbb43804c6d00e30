"""What people look at: figures for the counter and the performance page, the analyses behind
them, and the customer's quote sheet (PDF). Plotly and fpdf live here, nowhere else in the core.
"""
