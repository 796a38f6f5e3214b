"""T5's max_distance as a model setting (`model.t5_max_distance`): what it changes in the
bias, what 0 resolves to, and that adding it changed no committed run id."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ablations.config import resolve, run_id
from transformer import ModelConfig, build_model
from transformer.positional import T5Bias
from transformer.validation import ConfigError

ROOT = Path(__file__).parents[1]


def bias_at(max_distance: int, distance: int) -> int:
    cfg = ModelConfig(pos="t5", d_model=16, n_heads=2, t5_max_distance=max_distance)
    return int(T5Bias(cfg)._bucket(torch.tensor([-distance]))[0])


def test_distances_past_max_distance_share_the_last_bucket():
    last = 31                                                 # causal: 32 one-sided buckets
    assert bias_at(64, 64) == bias_at(64, 100) == bias_at(64, 500) == last
    assert bias_at(64, 48) < last
    assert bias_at(128, 64) < bias_at(128, 100) < last       # T5's 128: 64..127 split up
    assert bias_at(64, 10) == bias_at(128, 10) == 10         # the exact buckets are shared
    assert bias_at(64, 40) > bias_at(128, 40)                # finer spacing up to 64


def test_zero_follows_the_training_length_and_other_encodings_ignore_it():
    cfg = resolve([{"task": {"name": "lm", "seq_len": 48},
                    "model": {"pos": "t5", "t5_max_distance": 0}}])["model"]
    assert cfg["t5_max_distance"] == 48
    rope = resolve([{"task": {"name": "lm"}, "model": {"pos": "rope", "t5_max_distance": 64}}])
    assert "t5_max_distance" not in rope["model"]
    assert ModelConfig(pos="t5", max_len=64, t5_max_distance=0).t5_distance == 64   # bare core
    with pytest.raises(ConfigError, match="t5_max_distance"):
        ModelConfig(pos="t5", t5_max_distance=16)


def test_the_default_keeps_every_committed_t5_run_id():
    runs = [json.loads(p.read_text()) for p in
            sorted((ROOT / "results").glob("*/runs/*/result.json"))]
    t5 = [r for r in runs if r["config"]["model"].get("pos") == "t5"]
    # runs trained at another distance (lm_extrapolation's t5_distance) record it
    assert all(r["config"]["model"]["t5_max_distance"] != 128 for r in t5
               if "t5_max_distance" in r["config"]["model"])
    t5 = [r for r in t5 if "t5_max_distance" not in r["config"]["model"]]
    assert t5
    for r in t5:
        assert run_id(r["config"]) == r["run_id"]
        explicit = {**r["config"], "model": {**r["config"]["model"], "t5_max_distance": 128}}
        cfg = ModelConfig(**explicit["model"]).to_dict(drop_ignored=True)
        assert run_id({**r["config"], "model": cfg}) == r["run_id"]
        other = {**r["config"], "model": {**r["config"]["model"], "t5_max_distance": 64}}
        assert run_id(other) != r["run_id"]


def test_a_t5_model_with_a_short_max_distance_runs_past_it():
    torch.manual_seed(0)
    model = build_model(ModelConfig(pos="t5", d_model=16, n_heads=2, n_layers=1,
                                    vocab_size=11, max_len=32, t5_max_distance=0))
    out = model(torch.randint(0, 11, (2, 96)))                # 3x max_len = max_distance
    assert out.shape == (2, 96, 11) and torch.isfinite(out).all()
