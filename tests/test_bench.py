"""`ablate bench` at tiny sizes: every code path runs and its outputs are well-formed.
Never a timed assertion: the numbers of a --quick run mean nothing."""
import csv
import json

import pytest
import torch
import torch.nn.functional as F

from ablations.cli import main
from benchmarks import models, throughput
from benchmarks.common import Settings
from benchmarks.kvcache import bench_kvcache
from transformer import ModelConfig, build_model
from transformer import loss as fused


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    try:
        code = main(["bench", "--quick", "--threads", "1", "--out", str(out)])
    finally:                          # process-wide settings the bench changes
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    return code, out


def test_quick_bench_writes_every_output(quick_run):
    code, out = quick_run
    assert code == 0
    for name in ("bench.md", "bench.csv", "bench.json", "bench.png"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "bench.json").read_text())
    assert {"cpu", "cores", "torch", "torch_threads", "date"} <= set(data["machine"])
    benches = {r["bench"] for r in data["rows"]}
    assert benches == {"train", "flops", "kvcache", "recurrent", "scaling", "loop", "startup",
                       "gpu"}
    with open(out / "bench.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(data["rows"])
    table = (out / "bench.md").read_text()
    assert "| bench | contender | value |" in table and "tokens/s" in table


def test_quick_bench_rows_are_well_formed(quick_run):
    _, out = quick_run
    rows = json.loads((out / "bench.json").read_text())["rows"]
    names = {r["name"] for r in rows}
    for r in rows:
        assert r["unit"] and r["name"]
        if r["baseline"] is not None and r["bench"] != "gpu":
            assert r["baseline"] in names, r          # ratios name a row that exists
        if r["ratio"] is not None:
            assert r["ratio"] > 0
        if r["target"] is not None:
            assert r["passed"] in (True, False)
        if r["value"] != r["value"]:                   # nan: only a skipped measurement
            assert r["note"].startswith("skipped"), r
    ours = next(r for r in rows if r["bench"] == "train" and r["name"] == "ours")
    assert ours["value"] > 0
    startup = next(r for r in rows if r["name"].startswith("time to first step"))
    assert 0 < startup["extra"]["to_first_step"] <= startup["extra"]["total"]
    gpu = [r for r in rows if r["bench"] == "gpu"]
    if not torch.cuda.is_available():
        assert gpu and all(r["note"].startswith("skipped") for r in gpu)


def test_kv_cache_decoding_gives_the_recomputed_tokens():
    rows = bench_kvcache(Settings(quick=True, rounds=1))
    assert rows and all(r.extra["identical_tokens"] for r in rows)
    assert any(r.ratio is not None for r in rows)


def test_a_missing_peer_is_skipped_with_a_note(monkeypatch):
    def missing(shape):
        raise models.PeerMissing("x-transformers not installed")
    monkeypatch.setitem(models.PEERS, "x-transformers", missing)
    monkeypatch.setitem(models.PEERS, "hf-gpt2", missing)
    rows = throughput.bench_train(Settings(quick=True, rounds=1))
    skipped = [r for r in rows if r.note.startswith("skipped")]
    assert [r.name for r in skipped] == ["x-transformers", "hf-gpt2"]
    ours = next(r for r in rows if r.name == "ours")
    assert ours.value > 0 and ours.ratio is None and ours.target is None


def test_unknown_benchmark_is_bad_input(tmp_path, capsys):
    assert main(["bench", "--only", "trian", "--out", str(tmp_path)]) == 2
    assert "unknown benchmark 'trian'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("arch,tied", [("decoder", False), ("decoder", True), ("lstm", False),
                                       ("encoder_decoder", False)])
def test_fused_loss_equals_cross_entropy_of_the_logits(arch, tied, monkeypatch):
    """model.loss (projection fused into the loss, the path `ablate train` uses) gives
    F.cross_entropy(model(...)) and its gradients, across several chunks and with
    ignored positions."""
    monkeypatch.setattr(fused, "MAX_CHUNK_ELEMENTS", 3 * 50)      # 3 rows a chunk
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, vocab_size=50, d_model=16, n_heads=2,
                                    tie_embeddings=tied)).double()
    x = torch.randint(0, 50, (3, 7))
    target = torch.randint(0, 50, (3, 7))
    target[0, :4] = -100
    inputs = (x, x) if arch == "encoder_decoder" else (x,)
    want = F.cross_entropy(model(*inputs).flatten(0, 1), target.flatten(), ignore_index=-100)
    want_grads = torch.autograd.grad(want, list(model.parameters()), allow_unused=True)
    got = model.loss(*inputs, target=target)
    grads = torch.autograd.grad(got, list(model.parameters()), allow_unused=True)
    assert torch.allclose(got, want, atol=1e-12)
    for g, w in zip(grads, want_grads):
        assert (g is None) == (w is None)
        if g is not None:
            assert torch.allclose(g, w, atol=1e-12)


def test_fused_loss_falls_back_without_grad_and_under_autocast():
    torch.manual_seed(0)
    h, w = torch.randn(10, 8), torch.randn(20, 8)
    t = torch.randint(0, 20, (10,))
    want = F.cross_entropy(h @ w.t(), t)
    with torch.no_grad():
        assert torch.allclose(fused.linear_cross_entropy(h, w, t), want, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = fused.linear_cross_entropy(h, w, t)
    assert got.dtype == torch.float32 and abs(got.item() - want.item()) < 0.05


@pytest.mark.parametrize("T,block", [(7, 7), (7, 3), (130, 64), (64, 64)])
def test_block_causal_attention_equals_sdpa(T, block):
    """The training path for short causal sequences on CPU: values and gradients equal
    SDPA's causal attention, including a partial last block."""
    from transformer.attention import BlockCausalAttention
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, T, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    grad = torch.randn(2, 3, T, 8, dtype=torch.float64)
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3)
    got = BlockCausalAttention.apply(q, k, v, 0.3, block)
    assert torch.allclose(got, want, atol=1e-12)
    for g, w in zip(torch.autograd.grad(got, (q, k, v), grad),
                    torch.autograd.grad(want, (q, k, v), grad)):
        assert torch.allclose(g, w, atol=1e-12)


def test_block_causal_attention_only_where_it_pays():
    from transformer.attention import use_block_causal
    q = torch.randn(2, 4, 32, 16, requires_grad=True)
    assert use_block_causal(q, q, dropout=0.0) == 32               # one block of 32
    assert use_block_causal(torch.randn(1, 4, 512, 16, requires_grad=True),
                            torch.randn(1, 4, 512, 16), dropout=0.0) == 64
    assert use_block_causal(q, q, dropout=0.1) == 0                # SDPA does dropout
    assert use_block_causal(q, q[:, :2], dropout=0.0) == 0         # grouped-query: SDPA
    with torch.no_grad():
        assert use_block_causal(q, q, dropout=0.0) == 0            # inference: SDPA
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert use_block_causal(q, q, dropout=0.0) == 0
    big = torch.randn(64, 8, 1024, 16, requires_grad=True)         # too many scores to keep
    assert use_block_causal(big, big, dropout=0.0) == 0
