"""The explorer's data equals the project's own forward pass; the export, the CLI and
the --serve mode (a real HTTP request on 127.0.0.1)."""
from __future__ import annotations

import json
import math
import threading
import urllib.error
import urllib.request

import pytest
import torch

from ablations import cli
from ablations.explore.export import Grid, export
from ablations.explore.pack import unpack
from ablations.explore.serve import make_server
from explore_fixtures import make_results, read_data
from transformer.config import ConfigError
from transformer.inspect import record_attention, row_entropy


@pytest.fixture
def results(tmp_path, monkeypatch):
    return make_results(tmp_path / "results", monkeypatch)


def forward(variant, text):
    inputs = variant.prompter.inputs(text)
    with torch.no_grad(), record_attention(variant.model, stages=True) as maps:
        logits = variant.model(*inputs.args)[0]
    return inputs, logits, maps


def test_views_equal_the_forward_pass(results):
    grid = Grid(results, "tiny_lm")
    text = "The animal didn't cross the street"
    views = grid.views(text)
    assert set(views) == {"pos=rope", "pos=alibi", "pos=learned"}
    for variant in grid.variants:
        v = views[variant.key]
        inputs, logits, maps = forward(variant, text)
        assert v["tokens"] == inputs.stream and len(v["tokens"]) == len(text)
        # logits are exact float32: the page's sampling reads the model's own numbers
        assert torch.equal(torch.tensor(unpack(v["logits"]), dtype=torch.float32), logits)
        layers = v["stacks"][0]["layers"]
        assert [s["name"] for s in v["stacks"]] == ["self-attention"] and len(layers) == 2
        stack = v["stacks"][0]
        for layer, w, stage in zip(layers, maps, maps.stages):
            assert torch.allclose(torch.tensor(unpack(layer["weights"])), w[0].double(),
                                  atol=1 / 65535)
            scaled = torch.tensor(unpack(layer["scaled"]))
            tol = layer["scaled"]["scale"]
            assert torch.allclose(scaled, stage["scaled"][0].double(), atol=tol)
            # the page's "after the mask" stage: scaled + bias, -inf above the diagonal
            bias = torch.tensor(unpack(stack["bias"])) if stack["bias"] else 0
            masked = (scaled + bias).masked_fill(
                torch.ones_like(scaled, dtype=torch.bool).triu(1), float("-inf"))
            assert stack["causal"]
            assert torch.allclose(masked, stage["masked"][0].double(), atol=2 * tol + 1e-6)
            assert layer["entropy"] == pytest.approx(
                row_entropy(w)[0].mean(-1).tolist(), abs=1e-5)
        assert (stack["bias"] is not None) == (variant.key == "pos=alibi")


def test_positional_views_read_the_model(results):
    grid = Grid(results, "tiny_lm")
    enc = {v.key: v.info["encoding"] for v in grid.variants}
    rope = grid.variants[0].model.stack.pos
    angles = torch.tensor(unpack(enc["pos=rope"]["angles"]))
    want = torch.remainder(torch.arange(64).double()[:, None] * rope.inv_freq.double(),
                           2 * math.pi)
    assert torch.allclose(angles, want, atol=1e-3)
    alibi = torch.tensor(unpack(enc["pos=alibi"]["bias"]))          # causal: offsets <= 0
    slopes = grid.variants[1].model.stack.pos.slopes.double()
    offsets = torch.tensor(enc["pos=alibi"]["offsets"]).double()
    assert offsets.max() == 0
    assert torch.allclose(alibi, slopes[:, None] * offsets[None, :], atol=1e-3)
    table = grid.variants[2].model.stack.pos.table.weight.double()
    assert torch.allclose(torch.tensor(unpack(enc["pos=learned"]["matrix"])), table,
                          atol=table.abs().max().item() / 30000)


def test_cross_attention_view(results):
    grid = Grid(results, "tiny_translate")
    views = grid.views("s0 s1 s2 s3 s4 s5")
    names = [s["name"] for s in views["cross"]["stacks"]]
    assert names == ["encoder self-attention", "decoder self-attention", "cross-attention"]
    cross = views["cross"]["stacks"][2]
    assert cross["keys"] == [0, 1, 2, 3, 4, 5] and len(cross["queries"]) == 6
    assert cross["layers"][0]["weights"]["shape"] == [2, 6, 6]
    assert views["cross"]["align"] == [3, 4, 5, 0, 1, 2]       # phrases reversed
    assert "cross-attention" not in [s["name"] for s in views["no_cross"]["stacks"]]


@pytest.mark.parametrize("grid, text, words", [
    ("tiny_lm", "naïve ☃", "not in the corpus vocabulary"),
    ("tiny_lm", "x" * 200, "at most 160"),
    ("tiny_lm", " ", "is empty"),
    ("tiny_lm", "a" * 70, "learned positional table has 64"),
    ("tiny_translate", "s0 s99 dog", "unknown word(s) s99 dog; valid: s0 .. s7"),
])
def test_bad_prompts_name_the_field(results, grid, text, words):
    with pytest.raises(ConfigError, match="prompt") as e:
        Grid(results, grid).views(text)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_export_writes_a_static_site(results, tmp_path):
    out = tmp_path / "site"
    notes = export(results, out, ["tiny_lm", "tiny_translate"])
    assert len(notes) == 2
    for name in ("index.html", "explorer.js", "sampling.js", "data/index.js"):
        assert (out / name).is_file()
    data = read_data(out / "data" / "tiny_lm.js")
    assert data["shown"] == ["pos=rope", "pos=alibi"] and len(data["prompts"]) == 2
    assert (out / "data" / "tiny_lm.js").stat().st_size < 5e6
    assert "tiny_translate" in (out / "data" / "index.js").read_text()
    # a clone without the weights keeps the data it has instead of losing variants
    before = (out / "data" / "tiny_lm.js").read_text()
    next(results.glob("tiny_lm/runs/*/model.pt")).unlink()
    assert "kept the existing" in export(results, out, ["tiny_lm"])[0]
    assert (out / "data" / "tiny_lm.js").read_text() == before


def test_cli_bad_input_is_one_line_and_exit_2(results, capsys):
    assert cli.main(["explore", "nope", "--results", str(results)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ablate explore: error: grid:") and "valid:" in err
    assert "\n" not in err


def test_serve_answers_a_real_request(results):
    server = make_server(results, ["tiny_lm", "tiny_translate"], "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    get = lambda path: urllib.request.urlopen(base + path, timeout=30)
    try:
        assert b"EXPLORER_SERVE" in get("/explorer/").read()
        assert b"tiny_lm" in get("/explorer/data/index.js").read()
        reply = json.loads(get("/explorer/api/view?grid=tiny_lm&prompt=it%20was"
                               "&variants=pos=rope").read())
        assert list(reply["views"]) == ["pos=rope"]
        variant = Grid(results, "tiny_lm").variants[0]
        _, logits, _ = forward(variant, "it was")
        assert torch.equal(torch.tensor(unpack(reply["views"]["pos=rope"]["logits"]),
                                        dtype=torch.float32), logits)
        with pytest.raises(urllib.error.HTTPError) as e:
            get("/explorer/api/view?grid=tiny_lm&prompt=%E2%98%83")
        assert e.value.code == 400 and json.loads(e.value.read())["error"].startswith("prompt:")
        with pytest.raises(urllib.error.HTTPError) as e:
            get("/../../etc/passwd")
        assert e.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_report_links_the_explorer_once_written(results, tmp_path):
    from ablations.report.index import report_index
    assert "explorer/index.html" not in report_index(results)
    export(results, results / "explorer", ["tiny_lm"])
    assert "[explorer/index.html](explorer/index.html)" in report_index(results)


def test_a_tuned_grid_shows_each_variant_at_its_chosen_rate(results, monkeypatch):
    """Labels of a tuned grid carry the rate; the explorer names variants without it
    and loads the run at the rate the sweep chose (report/tuning.chosen)."""
    from ablations import store
    from ablations.explore import choices
    from ablations.report import tuning
    gdir = store.grid_dir(results, "tiny_lm")
    manifest = store.read_manifest(gdir)
    a, b = manifest["runs"][0]["run_id"], manifest["runs"][1]["run_id"]
    manifest["runs"] = [
        {"run_id": a, "seed": 0, "axes": {"train.lr": 0.001}, "label": "pos=rope, lr=0.001",
         "variant": "pos=rope"},
        {"run_id": b, "seed": 0, "axes": {"train.lr": 0.01}, "label": "pos=rope, lr=0.01",
         "variant": "pos=rope"}]
    store.write_manifest(gdir, manifest)
    monkeypatch.setitem(choices.GRIDS, "tiny_lm", choices.Choice(
        variants=("pos=rope",), shown=("pos=rope",), prompts=(("it was", "test"),)))
    for lr, want in ((0.01, b), (0.001, a)):
        monkeypatch.setattr(tuning, "chosen", lambda gdir, name, lr=lr: {"pos=rope":
                                                                        {"train.lr": lr}})
        grid = Grid(results, "tiny_lm")
        assert [v.run_id for v in grid.variants] == [want] and not grid.missing
    monkeypatch.setattr(tuning, "chosen", lambda gdir, name: {})    # sweep not finished
    assert Grid(results, "tiny_lm").missing == ["pos=rope (no run at a chosen rate)"]


def test_a_grid_whose_prompts_its_results_cannot_read_is_skipped_not_fatal(results, tmp_path,
                                                                           monkeypatch):
    from ablations.explore import choices
    out = tmp_path / "site"
    export(results, out, ["tiny_lm", "tiny_translate"])
    before = (out / "data" / "tiny_translate.js").read_text()
    # the grid's prompts name words its (older) results' vocabulary lacks
    old = choices.GRIDS["tiny_translate"]
    monkeypatch.setitem(choices.GRIDS, "tiny_translate", choices.Choice(
        variants=old.variants, shown=old.shown, prompts=(("s0 s99", "a word past s7"),)))
    notes = export(results, out, ["tiny_lm", "tiny_translate"])
    skipped = [n for n in notes if n.startswith("tiny_translate")]
    assert len(skipped) == 1 and "prompt" in skipped[0] and "kept the existing" in skipped[0]
    assert (out / "data" / "tiny_translate.js").read_text() == before
    assert any(n.startswith("tiny_lm: 3 variants") for n in notes)      # the others go on
