"""One model's errors: where it fails on the test reviews, and why.

`analyse.analyse_errors` is the entry point: it predicts (`predict`), then runs each step on the
per-review table and writes the artifacts listed in its module docstring.

    predict.py        batched inference -> the per-review table (common.schema)
    text_metadata.py  TextBlob subjectivity and polarity (cached per dataset by a task)
    population.py     the latent space in 2-D (UMAP), PNG and interactive HTML
    clustering.py     k-means clusters of the latent space and their distinctive words
    dashboard.py      loss against each review feature, per bin, with Spearman's rho
    attributions.py   Integrated Gradients per token; global token importance
    heatmap.py        per-word heat-map pages of attributions
    movies.py         errors per movie
    calibration.py    ECE, Brier score, reliability diagram: raw and after the model's temperature
    insights.py       weak segments and the words the model leans on, in plain sentences

A new analysis of one model goes here as a pure function, called from `analyse.py`.
"""
