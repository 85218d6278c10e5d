"""Attribution drift: the words whose global importance changed most between two models.

Importance is a run's logged token table (`analysis/token_importance.csv`): the mean attribution
toward "positive" per occurrence of each word.
"""

from __future__ import annotations

import pandas as pd

DRIFT_COLUMNS = ("token", "old_importance", "new_importance", "change", "abs_change")
_IMPORTANCE_NAMES = ("importance", "mean_abs_attribution", "mean_abs", "attribution", "score")


def _importance_series(importance: pd.DataFrame | pd.Series | None) -> pd.Series:
    """token -> importance from a Series, a token-indexed frame or a frame with a `token` column."""
    if importance is None:
        return pd.Series(dtype=float)
    if isinstance(importance, pd.DataFrame):
        frame = importance.set_index("token") if "token" in importance.columns else importance
        named = [c for c in _IMPORTANCE_NAMES if c in frame.columns]
        numeric = named or list(frame.select_dtypes("number").columns)
        if not numeric:
            raise ValueError("token importance table has no numeric column")
        importance = frame[numeric[0]]
    series = importance.astype(float)
    series.index = series.index.astype(str)
    return series.groupby(level=0).mean()  # a repeated token counts once


def token_drift(
    new_importance: pd.DataFrame | pd.Series | None,
    old_importance: pd.DataFrame | pd.Series | None,
    top: int = 20,
) -> pd.DataFrame:
    """The `top` tokens whose global importance changed most.

    Importance is a token table's `importance` column (the analysis logs the mean attribution
    toward "positive" per occurrence, so a word that changed sides moves by the sum of both).
    Union of both vocabularies, a token missing from one side counting 0 (that model never relied
    on it). Empty frame when either side is missing: drift cannot be judged on one model alone.
    Raw values: if the two models' attributions differ in overall scale, every token moves.
    """
    if new_importance is None or old_importance is None:
        return pd.DataFrame(columns=list(DRIFT_COLUMNS))
    both = pd.concat(
        {
            "old_importance": _importance_series(old_importance),
            "new_importance": _importance_series(new_importance),
        },
        axis=1,
    ).fillna(0.0)
    both["change"] = both["new_importance"] - both["old_importance"]
    both["abs_change"] = both["change"].abs()
    both = both.rename_axis("token").reset_index()
    both = both.sort_values(["abs_change", "token"], ascending=[False, True], kind="stable")
    return both.head(top).reset_index(drop=True)[list(DRIFT_COLUMNS)]
