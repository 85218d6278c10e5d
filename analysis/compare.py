"""`python -m analysis.compare RUN_A RUN_B --out DIR`: compare any two logged runs (report.html).

A thin entry point; the work is in `analysis.paired.runs`.
"""

from __future__ import annotations

from analysis.paired.runs import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
