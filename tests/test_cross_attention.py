"""The cross-attention heatmap draws from a tiny untrained encoder_decoder."""
import math

import pandas as pd
import pytest
import torch

from ablations.config import resolve
from ablations.report.cross_attention import cross_attention_figure
from ablations.tasks import build_task
from transformer import ModelConfig, build_model


def tiny(reorder="chunks", **model):
    r = resolve([{"task": {"name": "translate", "reorder": reorder, "length": 6,
                           "chunk_len": 2, "n_words": 8}},
                 {"model": {"arch": "encoder_decoder", "d_model": 16, "n_heads": 2,
                            "n_layers": 2, **model}}])
    torch.manual_seed(0)
    return build_model(ModelConfig(**r["model"])), build_task(r["task"], 0, "encoder_decoder")


def test_draws_png_and_csv(tmp_path):
    model, task = tiny()
    aligned = cross_attention_figure(model, task, tmp_path / "xattn.png")
    assert (tmp_path / "xattn.png").stat().st_size > 1000
    table = pd.read_csv(tmp_path / "xattn.csv")
    assert len(aligned) == 2 and all(0 <= a <= 1 for a in aligned)
    assert len(table) == 2 * 6 * 6                      # layers x decoder x source
    rows = table.groupby(["layer", "decoder_pos"])["weight"].sum()
    assert rows.sub(1).abs().max() < 1e-4      # each query row is a distribution (5 decimals)
    # chunks of 2 reversed: target position 0 reads source position 4
    first = table[(table.layer == 0) & (table.decoder_pos == 0) & table.aligned]
    assert first.source_pos.tolist() == [4]
    assert model.training                               # mode restored


def test_no_cross_attention_is_an_error(tmp_path):
    model, task = tiny(cross_attention=False)
    with pytest.raises(ValueError, match="no cross-attention"):
        cross_attention_figure(model, task, tmp_path / "x.png")


def test_reverse_task_and_no_alignment(tmp_path, monkeypatch):
    r = resolve([{"task": {"name": "reverse", "length": 5, "n_tokens": 6}},
                 {"model": {"arch": "encoder_decoder", "d_model": 16, "n_heads": 2,
                            "n_layers": 1}}])
    model = build_model(ModelConfig(**r["model"]))
    task = build_task(r["task"], 0, "encoder_decoder")
    cross_attention_figure(model, task, tmp_path / "rev.png")
    table = pd.read_csv(tmp_path / "rev.csv")
    assert table[table.aligned].source_pos.tolist() == [4, 3, 2, 1, 0]
    from ablations.report import cross_attention
    monkeypatch.setattr(cross_attention, "alignment", lambda task, length: None)
    aligned = cross_attention_figure(model, task, tmp_path / "x.png")
    assert len(aligned) == 1 and math.isnan(aligned[0])
