"""The results store: the only code that knows the on-disk format.

    results/                       (a results folder, e.g. results/ or results-smoke/)
      .cache/                      tokenised corpora shared by every grid
      REPORT.md, explainers/       written by `ablate report`
      <grid>/manifest.json         the grid spec and its runs, written by `ablate run`
      <grid>/runs/<run_id>/
        config.json                the resolved config (what the run computes)
        metrics.csv                append-only curves: step, metric, value
        checkpoints/last.ckpt      the latest checkpoint, replaced atomically
        model.pt                   final weights and config, for explainers
        result.json                written last: a run is done when it exists; records
                                   the size and hash of model.pt and the rows of
                                   metrics.csv, which readers check (integrity.py)
        evals/<NAME>.json          post-hoc evaluations of the trained weights
        error.log, stderr.log      why a run failed; the runner's log of each attempt

Every file a reader trusts is written atomically (temp file + os.replace). Readers
raise `Unreadable` (naming the file) for damaged files instead of dying on them.
"""
from .files import Unreadable, atomic_write_json, atomic_write_text, read_json  # noqa: F401
from .layout import *  # noqa: F401,F403
from .evals import eval_is_current, eval_metrics, eval_path, read_evals, write_eval  # noqa: F401
from .manifest import read_config, read_manifest, write_config, write_manifest  # noqa: F401
from .metrics import MetricsWriter, last_step, read_metrics  # noqa: F401
from .weights import read_model, write_model  # noqa: F401
from .results import (DAMAGED, EXIT_BUSY, EXIT_FAILED, EXIT_OK, STATUSES,  # noqa: F401
                      clear_result, clear_run, exit_code, is_done, read_result, remove_run,
                      run_lock, stale_runs, status_of, write_result)
from . import integrity  # noqa: F401
