"""The prefix-LM mask (`model.prefix_len`): the first P positions see each other, every
later one sees them and its own past (Raffel et al. 2020, §3.2.1); the LM task's prefix
objective (`task.prefix`, `task.prefix_loss`) that goes with it; and that adding both
changed no committed run id."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from ablations.config import resolve, run_id
from ablations.tasks import IGNORE, TASKS, build_task, make_params
from transformer import ModelConfig, build_model, registries
from transformer.attend import causal_allowed
from transformer.inspect import record_attention
from transformer.validation import ConfigError

ROOT = Path(__file__).parents[1]
POS = registries["pos"].names()
V, T, P = 23, 12, 5


def tiny(**kw) -> ModelConfig:
    return ModelConfig(**{**dict(vocab_size=V, d_model=32, n_heads=4, n_layers=2,
                                 max_len=64, prefix_len=P), **kw})


def model_of(cfg: ModelConfig):
    torch.manual_seed(0)
    net = build_model(cfg).eval()
    with torch.no_grad():                      # t5 starts at zero bias: make it informative
        for p in net.parameters():
            if not p.any():
                p.normal_()
    return net


def out(net, x, src=None):
    return net(src, x) if src is not None else net(x)


def test_the_mask_is_bidirectional_over_the_prefix_and_causal_after_it():
    allowed = causal_allowed(8, 0, "cpu", prefix=3)
    for q in range(8):
        for k in range(8):
            assert bool(allowed[q, k]) == (k <= max(q, 2)), (q, k)
    assert torch.equal(causal_allowed(8, 0, "cpu", 1), causal_allowed(8, 0, "cpu"))


CASES = ([tiny(arch="decoder", pos=p) for p in POS]
         + [tiny(arch="encoder", causal=True, pos="rope"), tiny(arch="encoder_decoder")])


@pytest.mark.parametrize("cfg", CASES, ids=[f"{c.arch}-{c.pos}" for c in CASES])
def test_each_position_sees_exactly_up_to_max_of_itself_and_the_prefix(cfg):
    net = model_of(cfg)
    src = torch.randint(V, (2, 7)) if cfg.arch == "encoder_decoder" else None
    x = torch.randint(V, (2, T))
    base = out(net, x, src)
    for j in range(T):                                   # change one token at a time
        y = x.clone()
        y[:, j] = (y[:, j] + 1) % V
        moved = (out(net, y, src) - base).abs().amax(dim=(0, 2)) > 1e-6    # (T,)
        for i in range(T):
            assert bool(moved[i]) == (j <= max(i, P - 1)), (cfg.pos, i, j)


def test_extremes_equal_the_causal_and_the_bidirectional_stack():
    x = torch.randint(V, (2, T))
    causal = model_of(tiny(arch="encoder", causal=True, prefix_len=0))
    for p in (0, 1):                                     # a prefix of one is causal
        net = model_of(tiny(arch="encoder", causal=True, prefix_len=p))
        assert torch.allclose(net(x), causal(x), atol=1e-6)
    both = model_of(tiny(arch="encoder", causal=False))
    whole = model_of(tiny(arch="encoder", causal=True, prefix_len=T))
    assert torch.allclose(whole(x), both(x), atol=1e-6)


@pytest.mark.parametrize("pos", ["rope", "alibi", "t5"])
def test_recorded_weights_are_zero_exactly_where_the_mask_hides(pos):
    net = model_of(tiny(pos=pos))
    x = torch.randint(V, (2, T))
    fast = net(x)
    with record_attention(net) as maps:
        slow = net(x)
    assert torch.allclose(fast, slow, atol=1e-5)
    hidden = ~causal_allowed(T, 0, "cpu", P)
    for w in maps:
        assert (w[..., hidden] == 0).all() and (w[..., ~hidden] > 0).all()


@pytest.mark.parametrize("pos", ["rope", "alibi", "t5", "learned"])
def test_kv_cache_decoding_equals_recomputation_once_the_prefix_is_in(pos):
    net = model_of(tiny(pos=pos))
    with torch.no_grad():
        net.head.weight.mul_(20)                         # no ties between tokens
    prompt = torch.randint(V, (3, P + 1))
    cached = net.generate(prompt, 15, top_k=1, use_cache=True)
    assert torch.equal(cached, net.generate(prompt, 15, top_k=1, use_cache=False))
    with pytest.raises(ValueError, match="whole prefix"):        # a cached key never
        net.generate(prompt[:, :P - 2], 4, top_k=1)              # sees later keys
    short = net.generate(prompt[:, :P - 2], 4, top_k=1, use_cache=False)
    assert short.shape == (3, P + 2)                    # recomputation works at any length


def test_config_validates_and_ignores_the_prefix_where_it_means_nothing():
    with pytest.raises(ConfigError) as info:
        tiny(prefix_len=-1)
    assert info.value.field == "prefix_len" and "\n" not in str(info.value)
    assert "prefix_len" in tiny(arch="encoder").ignored_fields()          # bidirectional
    assert "prefix_len" in tiny(arch="lstm").ignored_fields()             # no attention
    assert "prefix_len" not in ModelConfig().to_dict()                    # at its default
    assert tiny().to_dict()["prefix_len"] == P


# -- the LM task's prefix objective ---------------------------------------------------

def lm(seed=0, **task):
    return build_task({"name": "lm", "seq_len": 16, **task}, seed, "decoder")


def test_prefix_targets_are_dropped_only_without_prefix_loss():
    full, cont = lm(prefix=6), lm(prefix=6, prefix_loss=False)
    a, b = full.train_batch(0, 4, "cpu"), cont.train_batch(0, 4, "cpu")
    assert torch.equal(a["input"], b["input"]) and (a["target"] != IGNORE).all()
    assert (b["target"][:, :5] == IGNORE).all()                  # predicting tokens 1..5
    assert torch.equal(b["target"][:, 5:], a["target"][:, 5:])   # token 6 on: scored


def test_cont_loss_scores_the_continuation_and_is_the_loss_without_a_prefix():
    torch.manual_seed(0)
    for task in (lm(), lm(prefix=6), lm(prefix=6, prefix_loss=False)):
        b = task.val_sets(1, 4, "cpu")[""][0]
        logits = torch.randn(*b["input"].shape, task.vocab_size)
        m = task.metrics(logits, b)
        assert set(m) == set(TASKS.info("lm")["writes"])
        tail = torch.nn.functional.cross_entropy(
            logits[:, task.cont_start:].flatten(0, 1), b["target"][:, task.cont_start:].flatten())
        assert float(m["cont_loss"]) == pytest.approx(float(tail), rel=1e-5)
        if task.params.prefix == 0 or not task.params.prefix_loss:
            assert float(m["cont_loss"]) == pytest.approx(float(m["loss"]), rel=1e-5)


@pytest.mark.parametrize("layer,field,words", [
    ({"task": {"prefix": 8}, "model": {"prefix_len": 8}}, "task.prefix_loss",
     ["must be false", "prefix_len=8"]),
    ({"task": {"prefix": 4, "prefix_loss": False}, "model": {"prefix_len": 8}},
     "task.prefix", [">= model.prefix_len=8", "got 4"]),
    ({"task": {"prefix": 64}}, "task.prefix", ["[0, seq_len=64)"]),
    ({"model": {"prefix_len": -2}}, "model.prefix_len", [">= 0"]),
])
def test_a_prefix_lm_that_would_see_its_targets_is_refused(layer, field, words):
    with pytest.raises(ConfigError) as info:
        resolve([{"task": {"name": "lm", **layer.get("task", {})},
                  "model": layer.get("model", {})}])
    assert info.value.field == field and "\n" not in str(info.value)
    for w in words:
        assert w in str(info.value)
    # a bidirectional stack ignores the prefix; the task's own prefix needs no model one
    resolve([{"task": {"name": "lm", "prefix": 8}, "model": {"arch": "encoder",
                                                            "prefix_len": 8}}])


def test_the_defaults_keep_every_committed_run_id():
    runs = [json.loads(p.read_text()) for p in
            sorted((ROOT / "results").glob("*/runs/*/result.json"))]
    assert len(runs) > 100
    for r in runs:
        cfg = r["config"]
        model = ModelConfig(**cfg["model"]).to_dict(drop_ignored=True)
        task = dataclasses.asdict(make_params(TASKS.get(cfg["task"]["name"]), cfg["task"]))
        assert run_id({**cfg, "model": model, "task": task}) == r["run_id"], r["run_id"]
    task = {"name": "lm", "prefix": 8, "prefix_loss": False}
    plain, prefixed = (run_id(resolve([{"task": t}])) for t in ({"name": "lm"}, task))
    assert plain != prefixed


def test_a_prefix_lm_samples_by_recomputation_until_its_prompt_fills_the_prefix(tmp_path):
    from ablations import store
    from ablations.cli import main as cli
    cfg = resolve([{"task": {"name": "lm", "seq_len": 16, "prefix": 8, "prefix_loss": False},
                    "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "prefix_len": 8}}],
                  tmp_path / ".cache")
    rd = store.run_dir(tmp_path, "g", run_id(cfg))
    rd.mkdir(parents=True)
    torch.manual_seed(0)
    store.atomic_write_json(rd / store.CONFIG, cfg)
    torch.save({"config": cfg, "state_dict": build_model(ModelConfig(**cfg["model"]))
                .state_dict()}, rd / "model.pt")
    store.atomic_write_json(rd / store.RESULT, {"status": "ok", "config": cfg, "metrics": {}})
    spec = json.dumps({"generate": {"prompt": "def ", "max_new_tokens": 6}})   # 4 < 8
    assert cli(["_evaluate", str(rd), "--eval", f"s={spec}"]) == 0
    sample = store.read_json(rd / "evals" / "s.json")["samples"][0]
    assert "error" not in sample and len(sample["text"]) == 6

