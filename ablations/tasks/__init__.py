"""Tasks: generated (deterministic from a seed) and real text. See base.py for the contract.

Importing this package registers every shipped task in TASKS."""
from .base import (IGNORE, TASKS, Task, TaskParams, build_task, choice, make_params,  # noqa: F401
                   sequence_metrics, task_of)
from . import synthetic, text  # noqa: F401,E402  (registration)
from . import disambiguate  # noqa: F401,E402  (registration; the masking grid's encoder task)
from . import layer_time  # noqa: F401,E402  (registration; the parallelism grid's measurement)
