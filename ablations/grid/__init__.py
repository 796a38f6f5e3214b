"""Running an ablation grid: the YAML spec and its validation, expansion into runs, and
`ablate run`, which executes the runs in a local slot pool or as a SLURM array.

Each run is a process of its own (forked by a slot's worker, or `ablate _run_one
RUN_DIR`) that the grid talks to only through the store. The one exception is the
dry run's timing probe (probe.py), which times a few training steps in this process.
"""

from .expand import Run, expand  # noqa: F401
from .load import import_plugins, load  # noqa: F401
from .spec import SHIPPED, GridError, GridSpec, read_yaml  # noqa: F401
