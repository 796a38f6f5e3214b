"""Budget matching: solve a cell's width so that its parameter count hits a target.

Comparisons across architectures (an LSTM against a decoder) are only fair at a
matched parameter count, and the width that gives N parameters differs per arch: a
2-layer LSTM of hidden size h has ~16 h^2 weights, a 2-layer Transformer block stack
~24 d^2 (with d_ff = 4 d). A grid states `match: {params: N, by: model.d_model}` and
each cell's width is solved here.

`solve_width` is pure: it only calls `resolve(width)` (the cell's fully resolved run
config at that width, or a ConfigError for an invalid width: d_model not divisible by
n_heads, an odd RoPE head dimension, ...) and counts parameters by building the model
on the meta device (no memory, no init). Parameter counts grow monotonically (roughly
quadratically) with width, so it brackets the target by doubling, bisects over the
valid widths, and returns the valid width whose count is closest to the target.
"""
from __future__ import annotations

import json
from typing import Callable

from transformer.validation import ConfigError

MAX_WIDTH = 1 << 16          # no CPU-to-cluster grid goes wider; beyond it: unreachable
SCAN = 512                   # widths tried linearly when no power of two is valid


def run_params(run, counted: dict) -> int:
    """A run's parameter count, memoised in `counted` by its model config (cells of one
    shape share it); ConfigError names the run."""
    key = json.dumps(run.config["model"], sort_keys=True)
    if key not in counted:
        try:
            counted[key] = count_params(run.config["model"])
        except ConfigError as e:
            raise ConfigError(f"run {run.run_id} ({run.label})", str(e)) from None
    return counted[key]


def count_params(model_cfg: dict) -> int:
    """Parameters of the model a config describes, built without memory or init."""
    from transformer.model import build_skeleton
    return sum(p.numel() for p in build_skeleton(model_cfg).parameters())


def solve_width(resolve: Callable[[int], dict], target: int, *, field: str = "model.d_model",
                tolerance: float = 0.05, where: str = "match.params") -> tuple[int, int]:
    """The width w (a value of `field`) whose model is closest to `target` parameters,
    and that count: (w, params). Raises ConfigError(where, ...) when no valid width
    lands within `tolerance` (relative) of the target, naming the closest one.

    resolve(w) -> a resolved run config (a dict with a "model" section), or raises
    ConfigError when w is not a valid width for this cell. `field` is used only in
    messages: matching by model.d_ff works the same way, through `resolve`.
    """
    if isinstance(target, bool) or not isinstance(target, int) or target < 1:
        raise ConfigError(where, f"expected a positive integer, got {target!r}")
    if not 0 <= tolerance < 1:
        raise ConfigError(where, f"tolerance must be in [0, 1), got {tolerance!r}")
    search = WidthSearch(resolve, field.split(".")[-1], where)
    lo, hi = search.bracket(search.start(), target)
    if hi is not None:
        lo, hi = search.bisect(lo, hi, target)
    best = min((w for w in (lo, hi) if w and search.params(w) is not None),
               key=lambda w: (abs(search.params(w) - target), w))   # ties: the narrower
    got = search.params(best)
    if abs(got - target) > tolerance * target:
        side = "below" if got < target else "above"
        raise ConfigError(where, f"no {search.name} gives {target:,} parameters within "
                          f"{tolerance:.0%}: the closest is {got:,} ({search.name}={best}, "
                          f"{abs(got - target) / target:.0%} {side})")
    return best, got


class WidthSearch:
    """Parameter counts by width, memoised; None marks a width the cell rejects (d_model
    not divisible by n_heads, an odd RoPE head size, ...)."""

    def __init__(self, resolve: Callable[[int], dict], name: str, where: str):
        self.resolve, self.name, self.where = resolve, name, where
        self.counts: dict[int, int | None] = {}
        self.errors: list[ConfigError] = []

    def params(self, w: int) -> int | None:
        if w not in self.counts:
            try:
                self.counts[w] = count_params(self.resolve(w)["model"])
            except ConfigError as e:
                self.errors.append(e)
                self.counts[w] = None
        return self.counts[w]

    def valid_near(self, mid: int, lo: int, hi: int) -> int | None:
        """The valid width in the open interval (lo, hi) nearest to mid, or None."""
        for off in range(hi - lo):
            for w in (mid + off, mid - off) if off else (mid,):
                if lo < w < hi and self.params(w) is not None:
                    return w
            if mid - off <= lo and mid + off >= hi:
                break
        return None

    def start(self) -> int:
        """A valid width to search from: powers of two suit almost every head layout."""
        start = next((w for w in (1 << i for i in range(3, 13))
                      if self.params(w) is not None), None)
        if start is None:
            start = next((w for w in range(1, SCAN + 1) if self.params(w) is not None), None)
        if start is None:          # nothing is valid: the cell itself is broken, say why
            raise self.errors[0] if self.errors else ConfigError(
                self.where, f"no valid {self.name} found")
        return start

    def bracket(self, w: int, target: int) -> tuple[int, int | None]:
        """(lo, hi): lo has fewer parameters than the target, hi at least as many (None:
        no valid width up to MAX_WIDTH reaches it), by doubling from w."""
        lo, hi = 0, None
        while True:
            if self.params(w) >= target:
                hi = w
                break
            lo = w
            if w >= MAX_WIDTH:
                break
            w = self.valid_near(min(2 * w, MAX_WIDTH), w, MAX_WIDTH + 1)
            if w is None:
                break
        if hi is not None and lo == 0:           # is there a smaller valid width still?
            smaller = self.valid_near(hi // 2, 0, hi)
            while smaller is not None and self.params(smaller) >= target:
                hi = smaller
                smaller = self.valid_near(hi // 2, 0, hi)
            lo = smaller or 0
        return lo, hi

    def bisect(self, lo: int, hi: int, target: int) -> tuple[int, int]:
        """Narrow (lo, hi) until they are neighbours among the valid widths."""
        while True:
            mid = self.valid_near((lo + hi) // 2, lo, hi)
            if mid is None:
                return lo, hi
            if self.params(mid) >= target:
                hi = mid
            else:
                lo = mid
