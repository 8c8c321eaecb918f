"""``arena-compare``: select trial runs, measure the criteria, rank, and report.

query.py reads the runs from MLflow, criteria.py turns them into one value per criterion and
framework, rank.py normalizes and weighs them with bootstrap intervals, report.py renders the
terminal table, Markdown, HTML and CSV files and logs them as a comparison run.
"""
