"""Has the data moved away from what the champion was trained and tested on? (The "retraining
with a reason" question: a retraining should be triggered by evidence, and this is the evidence.)

It answers it for two comparisons, each a `DriftReport` of one reference against one current set:
- the candidate's training data vs the data the champion was trained on (did the training data
  change enough that a new vocabulary or a new model is warranted?);
- newly arrived labelled reviews vs the test split (is the world the champion serves still the
  one it was tested on, and does the champion still score as well on it?).

Each measure has an effect statistic, a threshold and a significance test; it is drifted when
both agree (see `thresholds`): label balance, rating distribution, review length, the
out-of-vocabulary rate under the champion's vocabulary, and the champion's own accuracy and loss
(the most direct sign). The words the vocabulary lacks are listed, with no threshold.

Modules (computation apart from display; frames in, typed results out, no I/O but `report`'s
writer; the caller logs `report.metrics()` and the written folder to MLflow):
    thresholds  `DriftThresholds`: every threshold and setting of the measures, documented
    stats       pure statistics: PSI, quantile bins, z / chi-square / KS tests, Wilson and
                Newcombe intervals, an unpaired bootstrap
    result      `DriftMeasure`, `DriftReport` (`metrics()`, `measure_frame()`)
    inputs      the input frames checked; `profile_texts`: one tokenizer pass per side
                (`TokenProfile`: lengths, OOV counts, the missing words)
    measures    one function per measure and `build_drift_report`
    report      `drift_markdown`, `drift_html`, `write_drift_report`, `summary_line`

Why not Evidently: it brings a heavy, pinned dependency set (pandas, numpy, plotly versions) into
an environment other steps rely on, and the measures that matter here (OOV rate under this
champion's vocabulary, the words that vocabulary lacks, the champion's accuracy on new labelled
reviews) are specific to this model; the generic ones (PSI, KS, chi-square) are a few lines each.

Where a new drift measure goes: a function in `measures` that takes what it needs (labels,
a `TokenProfile`, predictions) and the `DriftThresholds`, and returns a `DriftMeasure` (name =
its metric key, an effect statistic with a threshold, a test) and the table behind it; its
statistic in `stats` if it is new; its threshold a field of `DriftThresholds`; its title in
`result.MEASURE_TITLES`; a call in `build_drift_report`. The report and the metrics pick it up.
Depends on `analysis.common` and `data.text` only; nothing in `analysis` depends on it yet.
"""

from analysis.drift.inputs import profile_texts
from analysis.drift.measures import build_drift_report
from analysis.drift.report import drift_html, drift_markdown, summary_line, write_drift_report
from analysis.drift.result import DriftMeasure, DriftReport
from analysis.drift.thresholds import DEFAULT_DRIFT_THRESHOLDS, DriftThresholds

__all__ = [
    "DEFAULT_DRIFT_THRESHOLDS",
    "DriftMeasure",
    "DriftReport",
    "DriftThresholds",
    "build_drift_report",
    "drift_html",
    "drift_markdown",
    "profile_texts",
    "summary_line",
    "write_drift_report",
]
