"""Behavioural checks: templated probes of how a model treats negation, diminishers, contrast,
names and typos, scored as pass rates.

    templates.py  the words and sentence templates the cases are written from
    cases.py      the checks, the cases drawn from the templates and each case's pass rule
    suite.py      scoring a model on every case: `run_behaviour_suite` -> `BehaviourReport`
    components.py the suite per part of a model with the n-gram branch (network, branch, both):
                  `run_component_suite` -> `ComponentReport`

A new check: its templates in `templates.py`, its builder in `cases.py` (added to `CHECKS`), and
a rule in `case_passes` if none of the existing ones fits.
"""
