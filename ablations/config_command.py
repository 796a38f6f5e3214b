"""`ablate config`: the resolved config of one run, every default explicit (model, train,
task sections), as `ablate train` with the same --task/--set would run it."""
from __future__ import annotations

import yaml

from .config import add_set_option, nest, parse_sets, resolve, run_id
from .plugins import add_plugin_option, import_modules


def add_arguments(p) -> None:
    p.add_argument("--task", metavar="NAME", help="the task (the same as --set task.name=NAME)")
    add_set_option(p, "model.pos=rope train.steps=500")
    add_plugin_option(p)
    p.add_argument("--results", default="results",
                   help="results folder whose corpus cache a text task reads (default: results)")


def main(args) -> int:
    from . import store
    import_modules(args.plugin)
    layers = [{"task": {"name": args.task}} if args.task else {}, nest(parse_sets(args.sets))]
    resolved = resolve(layers, cache_dir=store.cache_dir(args.results))
    print(f"# run id {run_id(resolved)}; `ablate list --fields` has every field's choices")
    print(yaml.safe_dump(resolved, sort_keys=False, default_flow_style=False), end="")
    return 0
