"""Error analysis of the sentiment models, grouped by the question each part answers.

    errors/     Where and why does ONE model fail? `errors.analyse.analyse_errors` runs every step
                on one model's test predictions: the per-review table, latent map (UMAP),
                clusters, metadata-vs-loss dashboard, Integrated-Gradients heat-maps, token
                importance, errors per movie, likely label errors (`label_issues`: cleanlab) and
                the plain-language insights.
    paired/     How do TWO runs differ on the same reviews? One pairing core (`paired.pairing`)
                serves dense vs CNN (`dense_vs_cnn`, its report) and this run vs the champion
                (`champion`: the regression check that gates promotion).
    behaviour/  Does a model handle negation, diminishers, contrast, names and typos?
                Templated cases (`cases`) and the suite that scores them (`suite`).
    drift/      Has the data changed? Label balance, ratings, lengths, out-of-vocabulary rate
                under the champion's vocabulary, and the champion's accuracy on new reviews.
    common/     Each shared concept once: the per-review table (`schema`), review segments and
                the one bin rule (`segments`), the thresholds object (`thresholds`), Markdown and
                HTML rendering (`render`), MLflow artifact I/O (`artifacts`).
    run_summary.py  the pipeline run's Markdown summary; explain.py, compare.py: command lines.

Where a change goes:
- a new view of one model's errors: a module in `errors/` with a pure function over the
  per-review table (and the net, if it needs one), called from `errors.analyse`;
- a new comparison of two runs: build on `paired.pairing.pair_tables`, put the computation and
  its report in `paired/`, and call it from a task;
- a new behavioural check: templates in `behaviour/templates.py`, a `BehaviourCase` rule in
  `behaviour/cases.py`;
- a new drift measure: a function in `drift/measures.py` returning a `DriftMeasure`;
- a new threshold: a field of `common.thresholds.Thresholds`, never a default in a signature.

Layers (checked by the import contract in pyproject.toml, run by tests/test_architecture.py):
paired may use errors and behaviour; errors, paired, behaviour and drift use common; nothing here imports tasks/ or
flows/. Pure functions over arrays and DataFrames; MLflow only in `common.artifacts` and tasks.
"""
