"""A grid's explorer data from its kept weights, and the static site that shows it.

    results/explorer/index.html, explorer.js, explorer.css   the page (from static/)
    results/explorer/data/index.js                           the grids it covers
    results/explorer/data/<grid>.js                          one grid: loaded on demand

Data files are scripts assigning to a global, not JSON: a page opened from the file
system may not fetch() its neighbours, but it may load scripts.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from transformer.config import ConfigError
from transformer.validation import same_value

from .. import store
from ..report import tuning
from .choices import GRIDS, Choice
from .encodings import encoding
from .tokens import Prompter
from .views import view

STATIC = Path(__file__).parent / "static"
PAGE_FILES = ("index.html", "explorer.css", "explorer.js", "sampling.js", "draw.js", "views.js",
              "serve.js")
METRICS = ("val_loss", "val_acc", "val_exact")
SUMMARY = ("arch", "pos", "attn_scale", "d_head", "n_heads", "n_layers", "d_model",
           "cross_attention")


@dataclasses.dataclass
class Variant:
    key: str                # the manifest label
    run_id: str
    model: object
    prompter: Prompter
    info: dict              # what the page lists: config summary, metrics, encoding


class Grid:
    """A grid's chosen variants, loaded once: `data()` for the page, `views()` per prompt."""

    def __init__(self, results: Path, name: str, choice: Choice | None = None):
        self.results, self.name = Path(results), name
        self.choice = choice or GRIDS[name]
        self.path = store.grid_dir(self.results, name)
        self.manifest = store.read_manifest(self.path)
        self.variants: list[Variant] = []
        self.missing: list[str] = []
        picks = self._chosen_rates()
        for label in self.choice.variants:
            run = next((r for r in self.manifest["runs"] if r.get("seed") == self.choice.seed
                        and self._is(r, label, picks)), None)
            rdir = store.run_dir(self.results, name, run["run_id"]) if run else None
            if rdir is None or not (rdir / store.MODEL).is_file():
                why = run["run_id"] if run else ("not in manifest" if picks is None
                                                 else "no run at a chosen rate")
                self.missing.append(f"{label} ({why})")
                continue
            self.variants.append(self._load(label, rdir))

    def _chosen_rates(self) -> dict | None:
        """A tuned grid's variant -> its chosen values (None for an untuned grid, or one
        whose sweep is not finished: its variants are then missing)."""
        if not any("variant" in r for r in self.manifest["runs"]):
            return None
        try:
            return tuning.chosen(self.path, self.name)
        except ConfigError:
            return {}

    @staticmethod
    def _is(run: dict, label: str, picks: dict | None) -> bool:
        """Is this manifest entry the variant `label` (in a tuned grid: at its chosen
        values)? Variants are named by label without the tuned keys."""
        if picks is None:
            return run.get("label") == label
        values = picks.get(label)
        return (run.get("variant") == label and values is not None
                and all(same_value((run.get("axes") or {}).get(k), v)
                        for k, v in values.items()))

    def _load(self, label: str, rdir: Path) -> Variant:
        from ..tasks import task_of
        cfg, model = store.read_model(rdir)
        task = task_of(cfg, store.cache_dir(self.results))
        try:
            metrics = (store.read_result(rdir).get("metrics") or {})
        except (FileNotFoundError, store.Unreadable):
            metrics = {}
        info = {"key": label, "run_id": rdir.name,
                "config": {k: cfg["model"].get(k) for k in SUMMARY if k in cfg["model"]},
                "params": model.num_params(),
                "metrics": {k: round(v, 4) for k, v in metrics.items()
                            if k in METRICS and isinstance(v, float) and math.isfinite(v)},
                "encoding": encoding(model)}
        return Variant(label, rdir.name, model, Prompter(cfg, task, model), info)

    def views(self, text: str, keys=None) -> dict:
        """{variant key: view} for one prompt; ConfigError naming `prompt` on bad input."""
        chosen = [v for v in self.variants if keys is None or v.key in keys]
        return {v.key: view(v.model, v.prompter, text) for v in chosen}

    def data(self) -> dict:
        labels = self.variants[0].prompter.labels
        if any(v.prompter.labels != labels for v in self.variants):
            raise ValueError(f"{self.name}: the chosen variants do not share one vocabulary")
        spec = self.manifest.get("spec") or {}
        shown = [k for k in self.choice.shown if any(v.key == k for v in self.variants)]
        return {"name": self.name, "task": self.variants[0].prompter.kind,
                "question": spec.get("question") or "", "chapter": spec.get("chapter"),
                "claim": " ".join(str(self.manifest.get("claim") or "").split()),
                "verdicts": self._verdicts(), "headline": self._headline(),
                "readme": f"../{self.name}/README.md", "labels": labels,
                "variants": [v.info for v in self.variants],
                "shown": shown or [v.key for v in self.variants[:2]],
                "prompts": [{"text": t, "note": note, "views": self.views(t)}
                            for t, note in self.choice.prompts]}

    def _verdicts(self) -> list[dict]:
        try:
            found = store.read_json(self.path / "verdicts.json")
        except (FileNotFoundError, store.Unreadable):
            return []
        return [{k: v.get(k) for k in ("claim", "verdict", "evidence")} for v in found]

    def _headline(self) -> str | None:
        first = sorted(self.path.glob("01_*.png"))        # the grid's first plot
        return f"../{self.name}/{first[0].name}" if first else None


def script(variable: str, key: str | None, obj) -> str:
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    if key is None:
        return f"window.{variable} = {body};\n"
    return (f"window.{variable} = window.{variable} || {{}};\n"
            f"window.{variable}[{json.dumps(key)}] = {body};\n")


def write_page(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in PAGE_FILES:
        store.atomic_write_text(out / name, (STATIC / name).read_text(encoding="utf-8"))


def export(results: Path, out: Path, names: list[str]) -> list[str]:
    """Write the site for `names`; returns one note per grid. A grid whose chosen runs
    lack weights keeps the data file it has (a fresh clone keeps the committed export),
    and so does one whose prompts its results cannot read: one grid never stops the
    others."""
    results, out = Path(results), Path(out)
    unknown = [n for n in names if n not in GRIDS]
    if unknown:
        raise ConfigError("grid", f"no explorer for {unknown[0]!r}; valid: {', '.join(GRIDS)}")
    write_page(out)
    (out / "data").mkdir(exist_ok=True)
    notes = []
    for name in names:
        target = out / "data" / f"{name}.js"
        if not (store.grid_dir(results, name) / store.MANIFEST).is_file():
            notes.append(f"{name}: no results under {results}; skipped")
            continue
        grid = Grid(results, name)
        if grid.missing and target.is_file():
            notes.append(f"{name}: kept the existing {target}; no model.pt for "
                         f"{', '.join(grid.missing)}")
            continue
        if len(grid.variants) < 2:
            notes.append(f"{name}: fewer than 2 of its variants kept weights (missing: "
                         f"{', '.join(grid.missing)}); skipped")
            continue
        try:
            data = grid.data()
        except ConfigError as e:       # e.g. its prompts name words its results predate
            notes.append(f"{name}: {e}; skipped" + (f" (kept the existing {target})"
                                                    if target.is_file() else ""))
            continue
        store.atomic_write_text(target, script("EXPLORER_DATA", name, data))
        notes.append(f"{name}: {len(grid.variants)} variants, "
                     f"{target.stat().st_size / 1e6:.2f} MB -> {target}")
    written = [n for n in GRIDS if (out / "data" / f"{n}.js").is_file()]
    store.atomic_write_text(out / "data" / "index.js",
                            script("EXPLORER_INDEX", None, index(results, written)))
    return notes


def index(results: Path, names: list[str]) -> dict:
    """The page's list of grids, in the story's order (each grid's chapter)."""
    grids = []
    for name in names:
        try:
            spec = store.read_manifest(store.grid_dir(results, name)).get("spec") or {}
        except (FileNotFoundError, store.Unreadable):
            spec = {}
        grids.append({"name": name, "question": spec.get("question") or "",
                      "chapter": spec.get("chapter")})
    grids.sort(key=lambda g: (g["chapter"] or 10 ** 6, g["name"]))
    return {"grids": grids}
