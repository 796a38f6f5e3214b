"""A tiny results folder for the explorer's tests: two grids of untrained (seeded)
models with model.pt and a manifest, registered as explorer choices."""
from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from ablations import store
from ablations.config import resolve, run_id
from ablations.explore import choices
from transformer import build_model

LM = {"task": {"name": "lm", "seq_len": 16},
      "model": {"arch": "decoder", "d_model": 32, "n_heads": 2, "n_layers": 2, "max_len": 64}}
TRANSLATE = {"task": {"name": "translate", "length": 6, "n_words": 8, "chunk_len": 3},
             "model": {"arch": "encoder_decoder", "d_model": 32, "n_heads": 2, "n_layers": 1}}
GRIDS = {
    "tiny_lm": (LM, {"pos=rope": {"pos": "rope"}, "pos=alibi": {"pos": "alibi"},
                     "pos=learned": {"pos": "learned"}},
                ("The animal didn't cross the street", "it was")),
    "tiny_translate": (TRANSLATE, {"cross": {}, "no_cross": {"cross_attention": False}},
                       ("s0 s1 s2 s3 s4 s5",)),
}


def make_results(root: Path, monkeypatch) -> Path:
    """results/ with both grids; their choices are added to the explorer's table."""
    for name, (base, variants, prompts) in GRIDS.items():
        runs = []
        for i, (label, model) in enumerate(variants.items()):
            cfg = resolve([{"task": base["task"], "model": {**base["model"], **model},
                            "train": {"seed": 0}}], cache_dir=store.cache_dir(root))
            rid = run_id(cfg)
            rdir = store.run_dir(root, name, rid)
            rdir.mkdir(parents=True)
            torch.manual_seed(i)
            store.write_model(rdir, cfg, build_model(cfg["model"]).state_dict())
            runs.append({"run_id": rid, "seed": 0, "label": label})
        store.write_manifest(store.grid_dir(root, name), {
            "name": name, "claim": f"{name} claim", "runs": runs,
            "spec": {"question": f"what does {name} show?", "chapter": 1}})
        labels = tuple(variants)
        monkeypatch.setitem(choices.GRIDS, name, choices.Choice(
            variants=labels, shown=labels[:2], prompts=tuple((p, "test") for p in prompts)))
    return root


def read_data(path: Path) -> dict:
    """The object a data/<grid>.js file assigns."""
    text = Path(path).read_text(encoding="utf-8")
    return json.loads(re.search(r"\] = (\{.*\});\s*$", text, re.S).group(1))
