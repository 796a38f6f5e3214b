"""Running an ablation grid: the YAML spec and its validation, expansion into runs, and
`ablate run`, which executes the runs in a local slot pool or as a SLURM array.

Each run is a subprocess (`ablate _run_one RUN_DIR`), so this package never imports
Lightning or the training code; it talks to runs only through the store.
"""

from .expand import Run, expand  # noqa: F401
from .load import import_plugins, load  # noqa: F401
from .spec import SHIPPED, GridError, GridSpec, read_yaml  # noqa: F401
