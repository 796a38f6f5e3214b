"""Post-hoc evaluation: a grid's `evaluate:` key, scoring trained weights again under
other settings without retraining, from spec to scheduling to computing.

  spec.py      the `evaluate:` syntax, its validation and which runs it selects
               (torch-free: grid validation and the report read it)
  schedule.py  the runner's side: check every evaluation before anything runs, then
               start `ablate _evaluate` children for what finished runs lack
  compute.py   `ablate _evaluate RUN_DIR ...`: one run's evaluations, written to
               runs/<id>/evals/<NAME>.json (plain torch, no Lightning)
  decoding.py  what `generate:` and `decode_speed:` measure

Stored files and the `evaluate:` syntax are the store's and the grid's contract: see
ablations/store/evals.py.
"""
