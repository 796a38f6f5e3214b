"""Shared machinery: timing by alternating rounds, result rows, the machine's description.

Every comparison runs in one process and alternates its contenders round by round
(A B C A B C ...), so a burst of load from other processes hits all of them alike;
the figure reported is the median round. Timings are wall clock.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import torch

# shared with measurement runs (ablations/measure/), which time layers the same way
from ablations.measure.timing import alternate, median  # noqa: F401


@dataclass
class Row:
    """One measured number. `ratio` compares it with `baseline` (another row's name),
    `target` is the ratio the project promises (None: informational)."""
    bench: str
    name: str
    value: float
    unit: str
    baseline: Optional[str] = None
    ratio: Optional[float] = None
    target: Optional[float] = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def passed(self) -> Optional[bool]:
        if self.target is None or self.ratio is None:
            return None
        return self.ratio >= self.target

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


@dataclass
class Settings:
    quick: bool = False
    rounds: int = 7
    threads: int = 0                         # 0: leave torch's default
    out: str = "results/bench"

    def pick(self, full, quick):
        return quick if self.quick else full


def speedup(times: list[float], baseline_times: list[float]) -> float:
    """How many times faster than the baseline: the median over rounds of the paired
    ratio baseline_time / time. The two ran back to back in each round, so load that
    comes and goes between rounds cancels out of every ratio."""
    return median([b / a for a, b in zip(times, baseline_times)])


def spread(xs: list[float]) -> str:
    """Interquartile range relative to the median, as a noise indicator ('+-4%')."""
    if len(xs) < 4:
        return ""
    q = statistics.quantiles(xs, n=4)
    return f"iqr +-{50 * (q[2] - q[0]) / statistics.median(xs):.0f}%"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What the numbers were measured on (written beside them)."""
    info = {
        "cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_avg_1m_at_start": load_average(),
        "busy_cores_at_start": busy_cores(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    for mod in ("x_transformers", "transformers", "lightning"):
        info[mod] = package_version(mod)
    return info


def busy_cores(seconds: float = 1.0) -> Optional[float]:
    """How many cores other processes keep busy right now (from /proc/stat over
    `seconds`, before this process starts working); None where unavailable."""
    def snapshot():
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)            # idle + iowait, total
    try:
        idle0, total0 = snapshot()
        time.sleep(seconds)
        idle1, total1 = snapshot()
    except (OSError, ValueError, IndexError):
        return None
    busy = 1 - (idle1 - idle0) / max(1, total1 - total0)
    return round(busy * (os.cpu_count() or 1), 2)


def load_average() -> Optional[float]:
    """1-minute load average. Beyond what a benchmark itself adds (its thread count),
    other processes share the cores and multi-threaded ops wait on descheduled threads."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def package_version(module: str) -> Optional[str]:
    from importlib import metadata
    dist = {"x_transformers": "x-transformers"}.get(module, module)
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def manual_seed(seed: int = 0) -> None:
    torch.manual_seed(seed)
