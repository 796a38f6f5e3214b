"""`ablate bench` at tiny sizes: every code path runs and its outputs are well-formed.
Never a timed assertion: the numbers of a --quick run mean nothing."""
import csv
import json

import pytest
import torch

from ablations.cli import main
from benchmarks import models, throughput
from benchmarks.common import Settings
from benchmarks.kvcache import bench_kvcache


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


@pytest.mark.slow
def test_quick_bench_writes_every_output(quick_run):
    code, out = quick_run
    assert code == 0
    for name in ("bench.md", "bench.csv", "bench.json", "bench.png"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "bench.json").read_text())
    assert {"cpu", "cores", "torch", "torch_threads", "date"} <= set(data["machine"])
    benches = {r["bench"] for r in data["rows"]}
    assert benches == {"train", "flops", "kvcache", "recurrent", "scaling", "loop", "startup",
                       "worker", "gpu"}
    with open(out / "bench.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(data["rows"])
    table = (out / "bench.md").read_text()
    assert "| bench | contender | value |" in table and "tokens/s" in table


@pytest.mark.slow
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
    worker = next(r for r in rows if r["name"] == "grid, persistent worker")
    assert worker["ratio"] > 0 and worker["baseline"] == "grid, fresh process per run"
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


def test_gpu_bench_code_path_on_the_cpu():
    """Every row the GPU bench writes, at a tiny shape on the CPU (uncompiled): the GPU
    itself is only measured where one is present."""
    from benchmarks.models import GPTShape
    from benchmarks.throughput import gpu_rows
    rows = gpu_rows(Settings(quick=True, rounds=1), "cpu",
                    GPTShape(vocab=64, d_model=32, n_layers=1, n_heads=2, seq=48, batch=2),
                    compile_ok=False)
    by = {r.name: r for r in rows}
    assert by["ours, bf16 eager"].value > 0 and 0 < by["ours, bf16 eager"].ratio
    assert by["ours, bf16 eager"].extra["mfu_measured_peak"] > 0
    decode = next(r for r in rows if r.name.endswith("KV cache"))
    assert decode.value > 0 and decode.ratio > 0
