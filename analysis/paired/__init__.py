"""Two runs side by side, on the same test reviews: where one model fails and the other does not.

It answers two questions:
- dense vs CNN (today's two architectures): which reviews each gets wrong that the other gets
  right, how much one model's worst reviews cost the other, which phrases they read with opposite
  sign; the `compare-models` page;
- new vs champion (a retrained model against its architecture's champion): did it get worse, and
  on which reviews (segments, clusters, flipped predictions, drifted words); the `check-regression`
  gate that can block a promotion.

Modules (computation apart from display; tables in and typed results out):
    pairing            the core both share: `pair_tables` (join two per-review tables, checked),
                       `outcome` (the right/wrong 2x2), `FlipCounts`
    dense_vs_cnn       loss transfer, triage, phrase scores and sign flips, `Comparison`, `compare`
    label_errors       the test reviews each model flags as likely label errors (cleanlab); a
                       comparison sets aside those both flag (`loss_reduction_..._clean`)
    comparison_report  its Markdown + self-contained HTML page and CSVs: `write_comparison`
    runs               `compare_runs`: two logged MLflow runs -> the page; `main` (the CLI
                       `python -m analysis.compare`)
    champion           segment changes, alerts, `compare_with_champion` -> `ChampionComparison`,
                       `RegressionCheck` (what the Prefect task returns)
    champion_report    the regression check in words: `regression_markdown`, `change_sentence`
    clusters           champion k-means clusters matched to the new model's (Jaccard, Hungarian)
    drift              words whose attribution importance changed most
    bootstrap          the paired bootstrap interval of a mean loss change

A new comparison of two runs goes in a module of its own here: pair the tables with
`pairing.pair_tables` (never a merge of its own), read right/wrong off `pairing.outcome`, take its
thresholds from `analysis.common.thresholds`, return a frozen dataclass, and keep its rendering
(through `analysis.common.render`) in a separate `*_report` module. Depend on `analysis.common`
and `analysis.errors`; neither depends on this package.
"""
