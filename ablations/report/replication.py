"""Judging a grid's checks again on its replication results (`ablate replicate`).

`results/<grid>/replication/seeds/` holds the cells the grid's verdicts read, rerun on
held-out seeds; `.../corpus/` the same on a second corpus (text tasks). Each is a grid
folder of its own whose manifest lists the checks it replicates (`replication.checks`,
indices into the grid's `checks:`). Those checks are judged there exactly as on the
original runs (their own Holm family), unless the grid has changed since: a replication
run for other settings is not judged at all, and a check rewritten since is not covered
(each is named in the report's problems). Each verdict of the grid records what they
gave: `replicated: {seeds: VERDICT|null, corpus: VERDICT|null}`, null where there is no
replication result (yet) or the replication does not cover the check. A verdict that
does not replicate is shown beside the original wherever the verdict is, never dropped.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import store
from .family import DECIDED, verdicts_only
from .table import GridResults, load
from .verdicts import WORDS, evaluate_grid

KINDS = ("seeds", "corpus")
# the spec keys that decide which runs a replication holds: where one differs from the
# grid's, the replication is of an earlier grid (a check that changed is not covered)
RUNS_FROM = ("task", "base", "axes", "bundles", "exclude", "experiments", "match", "tune",
             "evaluate")
NAMES = {"seeds": "held-out seeds", "corpus": "second corpus"}
FOLDER = "replication"


MIN_SEEDS = 3                   # issue 22's budget: three held-out seeds at least


def seeds_asked(judged: list[dict]) -> tuple[int, list[int]]:
    """How many held-out seeds the power estimate of a grid's decided verdicts asks for
    (the most any asks: 80% power to see its effect at its per-seed spread), at least
    MIN_SEEDS, and which checks (numbered from 1) ask that many."""
    asks = {i + 1: v["seeds_needed"] for i, v in enumerate(judged)
            if not v.get("sanity") and v.get("verdict") in ("supported", "not_supported")
            and isinstance(v.get("seeds_needed"), int)}
    n = max([MIN_SEEDS, *asks.values()])
    return n, [i for i, k in asks.items() if k == n]


def power_advice(grid_path: Path, declared: int) -> str:
    """One line: the held-out seeds the grid declares against what the power estimate
    of its stored verdicts asks for; a warning when it declares fewer."""
    try:
        judged = store.read_json(Path(grid_path) / "verdicts.json")
    except (OSError, store.Unreadable):
        return (f"held-out seeds: {declared} declared; no stored verdicts to size them by "
                "(`ablate report` the grid first)")
    n, checks = seeds_asked(judged)
    which = f"check {', '.join(map(str, checks))}" if checks else f"the minimum, {MIN_SEEDS}"
    line = (f"held-out seeds: {declared} declared; the power estimate of the decided "
            f"verdicts asks for {n} ({which})")
    if declared < n:
        line += (": fewer, so a verdict may fail to replicate for want of power rather "
                 "than because it is wrong; add seeds to replicate.seeds")
    return line


def folder(grid_path: Path, kind: str) -> Path:
    return Path(grid_path) / FOLDER / kind


def ran_on(grid_path: Path, kinds=KINDS) -> str:
    """'held-out seeds 1000, 1001, 1002; second corpus shakespeare (same seeds)': what
    the stored replications of these kinds ran on, from their manifests ('' when none is
    readable)."""
    parts = []
    for kind in kinds:
        try:
            rep = store.read_manifest(folder(grid_path, kind)).get("replication") or {}
        except (OSError, store.Unreadable):
            continue
        seeds = ", ".join(map(str, rep.get("seeds") or []))
        parts.append(f"{NAMES[kind]} {seeds}" if kind == "seeds"
                     else f"{NAMES[kind]} {rep.get('corpus')} (same seeds)")
    return "; ".join(parts)


def judge(grid: GridResults, problems: list[str] | None = None) -> dict[str, list | None]:
    """kind -> one entry per check of the grid (its verdict dict there, or None where the
    replication does not cover it); None for a kind with no finished replication run.
    Each replication's verdicts.json is written beside its runs."""
    out: dict[str, list | None] = {}
    n = len(grid.spec.get("checks") or [])
    for kind in KINDS:
        path = folder(grid.path, kind)
        out[kind] = None
        if not (path / store.MANIFEST).is_file():
            continue
        try:
            manifest = store.read_manifest(path)
            rep = load(path)
        except (OSError, store.Unreadable) as e:
            if problems is not None:
                problems.append(str(e))
            continue
        ran_for = manifest.get("spec") or {}
        changed = [k for k in RUNS_FROM if ran_for.get(k) != grid.spec.get(k)]
        if changed:                 # its runs are another grid's: judging them would lie
            if problems is not None:
                problems.append(f"{path}: run for an earlier version of the grid (its "
                                f"{', '.join(changed)} differ); not judged: run `ablate "
                                "replicate` again")
            continue
        then = ran_for.get("checks") or []
        covered = {i for i in (manifest.get("replication") or {}).get("checks") or []
                   if i < len(then) and i < n and then[i] == grid.spec["checks"][i]}
        if problems is not None:
            problems.extend(rep.problems)
        if rep.runs.empty:
            continue
        # the grid's checks as they are now, on the replication's runs
        rep = dataclasses.replace(rep, spec=grid.spec, memo={})
        order = [i for i in range(n) if i in covered]
        judged = evaluate_grid(rep, only=set(order))
        store.atomic_write_json(path / "verdicts.json", judged)
        entries: list = [None] * n
        for i, v in zip(order, judged):
            entries[i] = v
        out[kind] = entries
    return out


def attach(verdict_list: list[dict], replicated: dict[str, list | None]) -> None:
    """Give each verdict its `replicated` entry (in place)."""
    for i, v in enumerate(verdict_list):
        v["replicated"] = {k: (rep[i]["verdict"] if rep and rep[i] and not v.get("sanity")
                               else None) for k, rep in replicated.items()}


def cell(v: dict, kind: str) -> str:
    """One replication of a verdict in words, flagged when it does not match. An
    inconclusive original has nothing to replicate: a replication that decides it says
    so, unflagged (more held-out seeds than original ones often have the power)."""
    got = (v.get("replicated") or {}).get(kind)
    if got is None:
        return "not run"
    text = WORDS[got].lower()
    if got == v["verdict"]:
        return text
    if v["verdict"] not in DECIDED:
        return f"{text} (the original was inconclusive)"
    return f"**{text}: does not replicate**"


def text(v: dict) -> str:
    """' *Replication:* held-out seeds supported; ...' or '' when none exists yet."""
    rep = v.get("replicated") or {}
    parts = [f"{NAMES[k]}: {cell(v, k)}" for k in KINDS if rep.get(k) is not None]
    return f" *Replication:* {'; '.join(parts)}." if parts else ""


def tally(vlist: list[dict]) -> str:
    """'seeds 5 of 6, corpus 3 of 4': of the decided verdicts (an inconclusive one that
    stays inconclusive replicates nothing), how many came out the same; 'not run' when
    no replication exists."""
    parts = []
    for kind in KINDS:
        ran = [v for v in verdicts_only(vlist) if (v.get("replicated") or {}).get(kind)]
        done = [v for v in ran if v["verdict"] in DECIDED]
        if ran and not done:
            parts.append(f"{kind}: none decided")
        elif done:
            same = sum(v["replicated"][kind] == v["verdict"] for v in done)
            parts.append(f"{kind} {same} of {len(done)}")
    return ", ".join(parts) or "not run"
