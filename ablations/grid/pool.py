"""The slot pool: one process per run, each slot pinned to a CPU share or to GPUs.

By default each slot keeps a persistent worker (worker.py) that has imported torch and
Lightning once and forks a child per run; a run that starts processes of its own
(several devices, DDP) or the test hook ABLATE_RUN_ONE_CMD gets a fresh interpreter
instead (`ablate _run_one RUN_DIR`), as does every run with `--fresh-processes`.

A child that crashes without writing result.json (killed, segfault, import error) is
recorded here as failed, with its exit status and the tail of its stderr, so one bad run
never stops the grid. Children die with the runner (PR_SET_PDEATHSIG on Linux) and sit
in their own session, so Ctrl-C reaches the runner only, which kills them before any
result is written: an interrupted run is resumed next time, never marked failed.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from transformer.validation import ConfigError

from .. import store
from ..plugins import PLUGINS_ENV
from .progress import GridProgress

REPO = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Slots:
    envs: list[dict]                      # one env overlay per slot
    label: str

    def describe(self, executor: str) -> str:
        return self.label if executor == "slurm" else f"{len(self.envs)} slot(s): {self.label}"


GPU_LAYER = {"train": {"accelerator": "gpu"}}   # execution-only: run ids do not change


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                # not on Linux
        return os.cpu_count() or 1


def parse_gpus(devices: list[str] | None) -> list[str]:
    """--devices: 'cpu' (or nothing) -> [], 'auto' -> every visible GPU, '0 1' / '0,1' -> ids."""
    if not devices or devices == ["cpu"]:
        return []
    if devices == ["auto"]:
        import torch
        return [str(i) for i in range(torch.cuda.device_count())]
    ids = [x for item in devices for x in item.split(",") if x]
    if not ids or not all(x.isdigit() for x in ids) or len(set(ids)) < len(ids):
        raise ConfigError("--devices", f"expected cpu, auto or distinct GPU ids like 0 1 2 3 "
                          f"or 0,1,2,3; got {' '.join(devices)!r}")
    return ids


def per_run_devices(runs) -> int:
    """train.devices, which must be one integer for the whole grid to share out GPUs."""
    counts = {json.dumps(r.config["train"]["devices"]) for r in runs}
    if len(counts) != 1 or not isinstance(json.loads(next(iter(counts))), int):
        raise ConfigError("train.devices", f"must be one integer across the grid to share "
                          f"out GPUs, got {', '.join(sorted(counts))}")
    return max(1, json.loads(counts.pop()))


def make_slots(gpus: list[str], workers: int | None, runs) -> Slots:
    """CPU: `workers` slots sharing the cores. GPUs: one slot per train.devices GPUs."""
    groups: list[str] = []
    if gpus:
        size = per_run_devices(runs)
        if len(gpus) % size:
            raise ConfigError("--devices", f"{len(gpus)} GPUs do not split into slots of "
                              f"train.devices={size}")
        groups = [",".join(gpus[i:i + size]) for i in range(0, len(gpus), size)]
    workers = workers or len(groups) or 1
    threads = str(max(1, cpu_count() // workers))
    base = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    if not groups:
        return Slots([dict(base) for _ in range(workers)], f"CPU, {threads} thread(s) each")
    # more workers than groups: runs share a GPU (small models leave it mostly idle)
    envs = [{**base, "CUDA_VISIBLE_DEVICES": groups[i % len(groups)]} for i in range(workers)]
    return Slots(envs, "GPUs " + " | ".join(e["CUDA_VISIBLE_DEVICES"] for e in envs))


def slurm_slots(gpus: int, cpus: int | None, runs) -> Slots:
    if gpus < 0 or (cpus is not None and cpus < 1):
        raise ConfigError("--gpus-per-task", "needs >= 0 GPUs and >= 1 CPU per task")
    if gpus and per_run_devices(runs) > gpus:
        raise ConfigError("--gpus-per-task", f"{gpus} is fewer than train.devices="
                          f"{per_run_devices(runs)}")
    env = {"OMP_NUM_THREADS": str(cpus), "MKL_NUM_THREADS": str(cpus)} if cpus else {}
    return Slots([env], f"SLURM array, {gpus} GPU(s) per task")


# ------------------------------------------------------------------- one child
def child_command(run_dir: Path) -> list[str]:
    hook = os.environ.get("ABLATE_RUN_ONE_CMD")
    base = shlex.split(hook) if hook else [sys.executable, "-m", "ablations", "_run_one"]
    return base + [str(run_dir)]


def child_env(overlay: dict, plugins: list[str]) -> dict:
    env = {**os.environ, **overlay, "TOKENIZERS_PARALLELISM": "false"}
    # the child must import this very code (and the grid's plugins) whatever its cwd
    paths = [str(REPO)] + plugin_roots(plugins) + [env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(filter(None, paths)))
    if plugins:
        env[PLUGINS_ENV] = ",".join(plugins)     # _run_one imports them first
    return env


def plugin_roots(plugins: list[str]) -> list[str]:
    """The sys.path entry each (already imported) plugin module was found under."""
    roots = []
    for name in plugins:
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            up = name.count(".") + (Path(path).name == "__init__.py")
            roots.append(str(Path(path).resolve().parents[up]))
    return roots


def _die_with_parent():                   # runs in the child between fork and exec
    os.setsid()
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGKILL)         # PR_SET_PDEATHSIG


_PRCTL = None
if sys.platform.startswith("linux"):
    import ctypes
    _PRCTL = ctypes.CDLL(None, use_errno=True).prctl


@dataclasses.dataclass
class Child:
    run_dir: Path
    proc: subprocess.Popen
    err_offset: int
    started: float


def launch(run_dir: Path, overlay: dict, plugins: list[str], worker=None) -> Child:
    """Start one run: forked by the slot's worker when given, else a fresh process."""
    with open(run_dir / store.STDERR_LOG, "ab") as err:   # stdout too: one log per run
        err.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} attempt\n".encode())
        err.flush()
        offset = err.tell()
        if worker is not None:
            return Child(run_dir, worker.start(run_dir), offset, time.monotonic())
        proc = subprocess.Popen(child_command(run_dir), env=child_env(overlay, plugins),
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                preexec_fn=_die_with_parent)
        return Child(run_dir, proc, offset, time.monotonic())


def forkable(run) -> bool:
    """Can a persistent worker fork this run? Not when it starts processes of its own
    (Lightning re-executes the command line for DDP), nor under the test hook."""
    train = run.config["train"]
    return ("ABLATE_RUN_ONE_CMD" not in os.environ and train.get("devices") in (1, "1")
            and train.get("strategy", "auto") == "auto")


class Workers:
    """One persistent worker per slot, started on first use and again if it died."""

    def __init__(self, slots: Slots, plugins: list[str], enabled: bool = True):
        self.slots, self.plugins, self.enabled = slots, plugins, enabled
        self.alive: dict[int, object] = {}

    def get(self, slot: int, run):
        if not self.enabled or not forkable(run):
            return None
        worker = self.alive.get(slot)
        if worker is None or not worker.alive():
            from .worker import Worker
            try:
                worker = Worker(child_env(self.slots.envs[slot], self.plugins),
                                preexec=_die_with_parent)
            except (OSError, RuntimeError):           # fall back to a fresh process
                return None
            self.alive[slot] = worker
        return worker

    def close(self) -> None:
        for worker in self.alive.values():
            worker.close()
        self.alive.clear()


def outcome(child: Child, rc: int, signals_interrupt: bool = False) -> tuple[str, str]:
    """(status, reason) of a child that exited with rc; writes result.json on a crash.

    status is ok / diverged / failed, 'elsewhere' when another process holds the run,
    or 'interrupted' (a signal when signals_interrupt, e.g. SLURM preemption: resume later).
    """
    if store.is_done(child.run_dir):
        return store.status_of(child.run_dir)
    if rc == store.EXIT_BUSY:
        return "elsewhere", "another process holds the run's lock"
    if rc < 0 and signals_interrupt:
        return "interrupted", f"killed by {signal.Signals(-rc).name}"
    how = (f"killed by {signal.Signals(-rc).name}" if rc < 0 else
           f"exit code {rc} without result.json" if rc in (0, 1) else f"exit code {rc}")
    reason = f"crashed ({how})"
    tail = stderr_tail(child.run_dir / store.STDERR_LOG, child.err_offset)
    if tail:
        reason += "; stderr tail:\n" + tail
    with store.run_lock(child.run_dir) as held:
        if not held:                      # another runner started it after our child died
            return "elsewhere", "another process holds the run's lock"
        if not store.is_done(child.run_dir):
            store.write_result(child.run_dir, status="failed", reason=reason,
                               config=_config_or_none(child.run_dir), exit_code=rc)
    return store.status_of(child.run_dir)


def _config_or_none(run_dir: Path) -> dict | None:
    try:
        return store.read_config(run_dir)
    except (FileNotFoundError, store.Unreadable):
        return None


def stderr_tail(path: Path, offset: int, lines: int = 25, chars: int = 3000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


def lock_held(run_dir: Path) -> bool:
    with store.run_lock(run_dir) as got:
        return not got


def kill(child: Child) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.proc.pid, signal.SIGKILL)   # the run and anything it spawned
    child.proc.wait()


# ------------------------------------------------------------------- the pool
def run_pool(pending: list, grid: str, slots: Slots, plugins: list[str],
             poll: float = 0.1, persistent: bool = True) -> None:
    """Run every (run, run_dir) with at most one child per slot; results go to disk."""
    queue = collections.deque(pending)
    active: dict[int, tuple] = {}
    workers = Workers(slots, plugins, persistent)
    with GridProgress(grid, len(pending)) as progress:
        try:
            while queue or active:
                for slot in range(len(slots.envs)):
                    while slot not in active and queue:
                        run, rd = queue.popleft()
                        text = f"{run.run_id} {run.label} seed={run.seed}"
                        if store.is_done(rd):         # another runner finished it meanwhile
                            progress.done(text, store.status_of(rd)[0], "finished elsewhere")
                        elif lock_held(rd):
                            progress.done(text, "elsewhere", "running in another process")
                        else:
                            active[slot] = (launch(rd, slots.envs[slot], plugins,
                                                   workers.get(slot, run)), text)
                            progress.started(text, rd, run.config["train"].get("steps"))
                for slot, (child, text) in list(active.items()):
                    rc = child.proc.poll()
                    if rc is None:
                        continue
                    del active[slot]
                    status, reason = outcome(child, rc)
                    took = f"{time.monotonic() - child.started:.1f}s"
                    detail = took if status == "ok" else f"{took}: {_first(reason)}"
                    progress.done(text, status, detail)
                progress.tick()
                time.sleep(poll)
        finally:
            for child, _ in active.values():          # interrupted: resume them next time
                kill(child)
            workers.close()


def _first(reason: str) -> str:
    return one_line(reason, 120)


def one_line(reason: str, width: int = 160) -> str:
    """A reason for a summary line: its first line, and its last (the exception) if more."""
    lines = [ln.strip() for ln in reason.strip().splitlines() if ln.strip()]
    text = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"
    return text if len(text) <= width else text[:width - 3] + "..."
