"""``arena-compare``: select trial runs, measure the criteria per workload, aggregate, rank, and report.

query.py reads the runs from MLflow; workload.py says which runs are comparable (the workload);
coverage.py splits each framework's runs by workload and decides which workloads every framework
ran; aggregate.py scores each workload (ratio to the best, seeds bootstrapped there) and takes the
geometric mean across workloads; table.py and criteria.py make the criteria tables; rank.py weighs
them with intervals and the performance profile; report.py, sections.py, export.py and plots.py
render the terminal, Markdown, HTML, CSV and figures (draw.py draws them,
in worker processes for a large comparison); run.py logs them as a comparison run.
"""
