"""What every part of the analysis shares, each defined once.

schema.py      the per-review table: its columns, `validate_samples`, loss and confidence
segments.py    the features a segment is cut by, the one bin rule, the `Segment` type
thresholds.py  `Thresholds`: what counts as weak, a regression, or confident
bootstrap.py   bootstrap means and the interval of a mean (every interval of the reports)
render.py      numbers, review openings and tables as Markdown or HTML
artifacts.py   reading and writing analysis artifacts in MLflow
"""
