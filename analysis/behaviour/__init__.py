"""Behavioural checks: templated probes of how a model treats negation, diminishers, contrast,
names and typos, scored as pass rates.

    cases.py  the templates, the cases they build and each case's pass rule
    suite.py  scoring a model on every case: `run_behaviour_suite` -> `BehaviourReport`

A new check: its templates and builder in `cases.py` (added to `CHECKS`), and a rule in
`case_passes` if none of the existing ones fits.
"""
