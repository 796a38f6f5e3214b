"""Training one run: the Lightning module, its optimizer and schedule, evaluation and
diagnostics, checkpoints, and `ablate train` / `ablate _run_one`.

Imports the core (`transformer`), the tasks, the run config and the store; never the
grid runner or the report.
"""
