"""What a stone is and how a file of them is read: the schema (columns, grades, bounds), reading
CSV files as people save them, row validation with line numbers, measurement checks, a stone's
identity (duplicates, the stable hold-out split) and drift between batches.

Nothing here knows about models, databases or the web. `diamonds.csv` beside these modules is the
bundled dataset (package data).
"""
