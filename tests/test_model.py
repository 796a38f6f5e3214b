"""Conformance tests for the Transformer core, parametrized over the registries so a
newly registered variant is covered without editing this file."""

import pytest
import torch
from torch import nn

from transformer import ModelConfig, build_model, registries
from transformer.validation import ConfigError
from transformer.attention import attention_mask
from transformer.ffn import gated_width
from transformer.inspect import attention_entropy, record_attention
from transformer.model import Block
from transformer.positional import NoPE, alibi_slopes
from transformer.registry import Registry

POS = registries["pos"].names()
ARCHS = registries["arch"].names()
RECURRENT = [a for a in ARCHS if "pos" in getattr(registries["arch"].get(a), "ignores", ())]
V, T = 37, 12


def tiny(**kw) -> ModelConfig:
    base = dict(vocab_size=V, d_model=32, n_heads=4, n_layers=2, max_len=64)
    return ModelConfig(**{**base, **kw})


def run(model, tokens, src=None):
    return model(src, tokens) if src is not None else model(tokens)


def make(cfg, seed=0):
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    src = torch.randint(V, (2, 9)) if cfg.arch == "encoder_decoder" else None
    return model, src


# every causal configuration: decoders, causal encoders, encoder-decoders, recurrences
CAUSAL = ([tiny(arch="decoder", pos=p) for p in POS]
          + [tiny(arch="encoder", pos=p, causal=True) for p in POS]
          + [tiny(arch="encoder_decoder", pos=p) for p in POS]
          + [tiny(arch="decoder", **{k: v}) for k in ("attn_scale", "norm", "norm_placement", "ffn")
             for v in registries[k].names()]
          + [tiny(arch="decoder", n_kv_heads=1), tiny(arch="decoder", n_kv_heads=2, pos="rope")]
          # heads whose size is not d_model / n_heads (d_head): wider, narrower, with GQA
          + [tiny(arch="decoder", d_head=6, pos="rope"),
             tiny(arch="encoder", d_head=3, causal=True),
             tiny(arch="encoder_decoder", d_head=12, n_kv_heads=1, pos="t5")]
          + [tiny(arch=a) for a in RECURRENT])
ids = lambda cfgs: [f"{c.arch}-{c.pos}-{c.attn_scale}-{c.norm}-{c.norm_placement}-{c.ffn}"
                    f"-kv{c.n_kv_heads}" + (f"-dh{c.d_head}" if c.d_head else "") for c in cfgs]


@pytest.mark.parametrize("cfg", CAUSAL, ids=ids(CAUSAL))
def test_no_causal_leakage(cfg):
    model, src = make(cfg)
    x = torch.randint(V, (2, T))
    y = x.clone()
    y[:, 7:] = (y[:, 7:] + 1) % V                 # change only the future of position 6
    a, b = run(model, x, src), run(model, y, src)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-5)
    assert (a[:, 7:] - b[:, 7:]).abs().max() > 0           # the future does reach it


@pytest.mark.parametrize("pos", POS)
def test_bidirectional_encoder_sees_the_future(pos):
    model, _ = make(tiny(arch="encoder", pos=pos))
    x = torch.randint(V, (2, T))
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % V
    assert not torch.allclose(model(x)[:, 0], model(y)[:, 0], atol=1e-6)


@pytest.mark.parametrize("pos", POS)
def test_permutation_equivariance_only_without_pe(pos):
    model, _ = make(tiny(arch="encoder", pos=pos))
    with torch.no_grad():                          # t5 starts at zero bias: make it informative
        for p in model.stack.pos.parameters():
            p.normal_()
    x = torch.randint(V, (2, T))
    perm = torch.randperm(T, generator=torch.Generator().manual_seed(1))
    equivariant = torch.allclose(model(x)[:, perm], model(x[:, perm]), atol=1e-5)
    assert equivariant == (pos == "none")


@pytest.mark.parametrize("pos", POS)
def test_positions_past_max_len_work_or_are_refused_clearly(pos):
    """A task's longer evaluation lengths (lm's eval_lengths) and decoding past max_len
    reach positions beyond the table a bounded encoding precomputes: it must either
    encode them or refuse with an error naming max_len, never fail deep in indexing."""
    model, _ = make(tiny(arch="decoder", pos=pos, max_len=16))
    x = torch.randint(V, (2, 40))
    try:
        with torch.no_grad():
            full = model(x)
            pe = model.stack.pos
            embedded = pe.embed(torch.zeros(1, 4, 32), 30)     # a KV-cache step past it
    except (ConfigError, ValueError) as e:
        assert "max_len" in str(e), f"{pos}: refused without naming max_len: {e}"
        return
    assert full.shape == (2, 40, V) and torch.isfinite(full).all()
    assert embedded.shape == (1, 4, 32) and torch.isfinite(embedded).all()


GENERATORS = ([tiny(arch="decoder", pos=p) for p in POS]
              + [tiny(arch="encoder_decoder", pos=p) for p in POS]
              + [tiny(arch="encoder", pos="rope", causal=True),
                 tiny(arch="decoder", pos="alibi", n_kv_heads=2),
                 tiny(arch="decoder", attn_scale="learned", norm_placement="post"),
                 tiny(arch="encoder_decoder", cross_attention=False),
                 tiny(arch="decoder", d_head=6, pos="rope", n_kv_heads=2),
                 tiny(arch="encoder_decoder", d_head=12, pos="alibi")]
              + [tiny(arch=a) for a in RECURRENT])


@pytest.mark.parametrize("cfg", GENERATORS, ids=ids(GENERATORS))
def test_kv_cache_equals_recomputation(cfg):
    model, src = make(cfg)
    with torch.no_grad():                          # sharpen the logits so ties cannot occur
        model.head.weight.mul_(20)
    prompt = torch.randint(V, (3, 5))
    kw = dict(max_new_tokens=20, top_k=1, src=None if src is None else src[:1].expand(3, -1))
    cached = model.generate(prompt, use_cache=True, **kw)
    full = model.generate(prompt, use_cache=False, **kw)
    assert cached.shape == (3, 25) and torch.equal(cached[:, :5], prompt)
    assert torch.equal(cached, full)


def test_kv_cache_logits_match_at_true_positions():
    """Incremental logits equal the full pass's at each absolute position (RoPE, ALiBi)."""
    for pos in ("rope", "alibi", "sinusoidal", "t5"):
        model, _ = make(tiny(arch="decoder", pos=pos))
        x = torch.randint(V, (2, 16))
        state = model.init_state(x[:, :6], 16)
        parts = [model.decode(x[:, :6], state)] + [model.decode(x[:, i:i + 1], state)
                                                   for i in range(6, 16)]
        assert torch.allclose(torch.cat(parts, 1), model(x), atol=1e-5), pos


def test_rope_logits_depend_only_on_relative_offsets():
    cfg = tiny(pos="rope")
    rope = registries["pos"].get("rope")(cfg)
    q = torch.randn(1, cfg.n_heads, 6, cfg.head_dim)
    k = torch.randn(1, cfg.n_heads, 6, cfg.head_dim)
    logits = lambda s: (lambda r: r[0] @ r[1].transpose(-1, -2))(rope.rotate(q, k, s, s))
    for shift in (1, 7, 100):
        assert torch.allclose(logits(0), logits(shift), atol=1e-4)
    assert not torch.allclose(*rope.rotate(q, k, 0, 0)[:1], q)  # it does rotate


def test_alibi_slopes_follow_press_et_al():
    for n in (1, 2, 4, 8, 16):
        s = alibi_slopes(n)
        assert s[0] == pytest.approx(2 ** (-8 / n))
        assert torch.allclose(s[1:] / s[:-1], torch.full((n - 1,), 2 ** (-8 / n)))
    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    assert len(alibi_slopes(6)) == 6


def _copy_attn(ours, theirs, D):
    w, b = theirs.in_proj_weight, theirs.in_proj_bias
    if ours.cross:
        ours.q_proj.weight.copy_(w[:D]), ours.q_proj.bias.copy_(b[:D])
        ours.kv_proj.weight.copy_(w[D:]), ours.kv_proj.bias.copy_(b[D:])
    else:
        ours.qkv_proj.weight.copy_(w), ours.qkv_proj.bias.copy_(b)
    ours.out_proj.load_state_dict(theirs.out_proj.state_dict())


@pytest.mark.parametrize("placement", ["post", "pre"])
@pytest.mark.parametrize("cross", [False, True], ids=["encoder_layer", "decoder_layer"])
def test_layers_reproduce_torch_transformer(placement, cross):
    D, H, F = 32, 4, 64
    cfg = tiny(d_model=D, n_heads=H, d_ff=F, ffn="relu", norm_placement=placement, pos="none")
    torch.manual_seed(0)
    Ref = nn.TransformerDecoderLayer if cross else nn.TransformerEncoderLayer
    ref = Ref(D, H, F, dropout=0.0, batch_first=True, norm_first=placement == "pre").eval()
    ours = Block(cfg, cross=cross).eval()
    subs = [ours.attn_sub] + ([ours.cross_sub] if cross else []) + [ours.ffn_sub]
    with torch.no_grad():
        _copy_attn(ours.self_attn, ref.self_attn, D)
        if cross:
            _copy_attn(ours.cross_attn, ref.multihead_attn, D)
        ours.ffn.up.load_state_dict(ref.linear1.state_dict())
        ours.ffn.down.load_state_dict(ref.linear2.state_dict())
        for sub, norm in zip(subs, [ref.norm1, ref.norm2] + ([ref.norm3] if cross else [])):
            sub.norm.load_state_dict(norm.state_dict())
    x, mem = torch.randn(3, 10, D), torch.randn(3, 7, D)
    if cross:
        mask, is_causal = attention_mask(NoPE(cfg), True, 10, 0, x.device)
        expected = ref(x, mem, tgt_mask=nn.Transformer.generate_square_subsequent_mask(10),
                       tgt_is_causal=True)
        got = ours(x, NoPE(cfg), 0, mask, is_causal, memory=mem)
    else:
        expected, got = ref(x), ours(x, NoPE(cfg))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_cross_attention_reads_the_encoders_final_output():
    model, src = make(tiny(arch="encoder_decoder", norm_placement="pre"))
    seen = []
    model.decoder.blocks[0].cross_attn.kv_proj.register_forward_hook(
        lambda m, inp, out: seen.append(inp[0]))
    model(src, torch.randint(V, (2, 5)))
    assert torch.allclose(seen[0], model.encode(src))          # after the final norm
    assert not torch.allclose(seen[0], model.embed(src))


def test_cross_attention_can_be_removed():
    model, src = make(tiny(arch="encoder_decoder", cross_attention=False))
    tgt = torch.randint(V, (2, 5))
    other = torch.randint(V, src.shape)
    assert torch.allclose(model(src, tgt), model(other, tgt))  # the source is unreachable


@pytest.mark.parametrize("gated", [n for n in registries["ffn"].names()
                                   if n not in ("relu", "gelu", "none")])
def test_gated_ffn_is_parameter_matched(gated):
    def count(ffn):
        return sum(p.numel() for p in registries["ffn"].get(ffn)(tiny(d_model=64)).parameters())
    assert abs(count(gated) / count("relu") - 1) < 0.03
    assert gated_width(256) == 171


@pytest.mark.parametrize("cfg", [tiny(arch=a) for a in ARCHS] + [tiny(pos=p) for p in POS],
                         ids=[*ARCHS, *POS])
def test_recorded_attention_equals_fast_path(cfg):
    model, src = make(cfg)
    x = torch.randint(V, (2, T))
    fast = run(model, x, src)
    with record_attention(model) as maps:
        slow = run(model, x, src)
    assert torch.allclose(fast, slow, atol=1e-5)
    if cfg.arch in RECURRENT:
        assert maps == []
    else:
        assert len(maps) >= cfg.n_layers
        for w in maps:
            assert torch.allclose(w.sum(-1), torch.ones(()), atol=1e-5)
        assert attention_entropy(maps[0]).shape == (cfg.n_heads,)
    assert all(m.recorded is None for m in model.modules() if hasattr(m, "recorded"))


def test_learned_pe_refuses_positions_past_its_table():
    model, _ = make(tiny(pos="learned", max_len=16))
    model(torch.randint(V, (1, 16)))
    with pytest.raises(ValueError, match="max_len=16"):
        model(torch.randint(V, (1, 17)))


def test_integer_pe_survives_layernorm_and_grows():
    pe = registries["pos"].get("integer")(tiny())
    out = pe.embed(torch.zeros(1, 50, 32), 0)
    assert out[0, 49].abs().max() == 49 and out[0].mean(-1).abs().max() < 1e-6 * 50
    assert not torch.allclose(nn.functional.layer_norm(out[0, 3:], (32,)), torch.zeros(47, 32))


def test_attention_scales():
    cfg = tiny(d_model=64, n_heads=1)
    q = torch.ones(1, 1, 2, 64)
    expected = {"sqrt": 1 / 8, "none": 1.0, "dk": 1 / 64, "learned": 1 / 8, "learned_unit": 1.0}
    for name in registries["attn_scale"].names():
        q2, s = registries["attn_scale"].get(name)(cfg)(q)
        assert (q2 * s).flatten()[0].item() == pytest.approx(expected[name], rel=1e-5), name


@pytest.mark.parametrize("kwargs, field", [
    (dict(d_model=30, n_heads=4), "d_model"),
    (dict(d_model=24, n_heads=8, pos="rope"), "pos"),         # head dim 3 is odd
    (dict(n_kv_heads=3), "n_kv_heads"),
    (dict(pos="ropee"), "pos"),
    (dict(arch="transformer"), "arch"),
    (dict(ffn="swish"), "ffn"),
    (dict(d_model="128"), "d_model"),
    (dict(n_layers=True), "n_layers"),
    (dict(dropout=1.5), "dropout"),
    (dict(vocab_size=0), "vocab_size"),
])
def test_validation_names_the_field(kwargs, field):
    with pytest.raises(ConfigError) as err:
        tiny(**kwargs)
    assert err.value.field == field and str(err.value).startswith(field + ":")


def test_unknown_variant_lists_valid_names():
    with pytest.raises(ConfigError, match="did you mean 'rope'.*valid: none, integer"):
        tiny(pos="ropee")


def test_registry_rejects_duplicates():
    reg = Registry("thing")
    reg.register("a")(type("A", (), {}))
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(type("B", (), {}))


def test_ignored_fields_and_defaults():
    assert "pos" in tiny(arch="lstm").ignored_fields()
    assert "norm" in tiny(norm_placement="none").ignored_fields()
    assert tiny(arch="encoder").causal is False and tiny(arch="decoder").causal is True
    assert tiny().d_ff == 128
    lstm = tiny(arch="lstm").to_dict(drop_ignored=True)
    assert "pos" not in lstm and "d_model" in lstm


def test_tied_embeddings_share_one_matrix():
    model = build_model(tiny(tie_embeddings=True))
    assert model.head.weight is model.embed.weight
    assert model.num_params() < build_model(tiny()).num_params()


def test_sampling_filters():
    from transformer.generate import filter_logits, sample_next
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, top_k=2)[0, 2:]).all()
    kept = ~torch.isinf(filter_logits(logits, top_p=0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert sample_next(logits, temperature=0).item() == 0
    g = torch.Generator().manual_seed(0)
    draws = torch.cat([sample_next(logits, top_k=2, generator=g) for _ in range(200)])
    assert set(draws.flatten().tolist()) == {0, 1}


@pytest.mark.parametrize("arch", ["encoder", "decoder", "lstm"])
def test_mean_readout_gives_every_position_the_sequence_mean(arch):
    token, _ = make(tiny(arch=arch))
    mean, _ = make(tiny(arch=arch, readout="mean"))
    x = torch.randint(V, (2, T))
    h = token.hidden(x)
    assert torch.allclose(mean.hidden(x), h.mean(1, keepdim=True).expand_as(h), atol=1e-6)
    assert token.state_dict().keys() == mean.state_dict().keys()   # no parameters of its own
    with pytest.raises(ValueError, match="does not generate"):
        mean.generate(x[:, :3], 2)


def test_mean_readout_makes_bidirectional_alibi_blind_to_direction():
    x = torch.randint(V, (2, T))
    alibi, _ = make(tiny(arch="encoder", pos="alibi", readout="mean"))
    assert torch.allclose(alibi(x), alibi(x.flip(1)), atol=1e-5)      # |i - j| is symmetric
    rope, _ = make(tiny(arch="encoder", pos="rope", readout="mean"))
    assert (rope(x) - rope(x.flip(1))).abs().max() > 1e-3             # a rotation's sign is not


VARIANTS = [(k, n) for k, reg in registries.items() if k != "arch" for n in reg.names()]


@pytest.mark.parametrize("field, name", VARIANTS, ids=[f"{k}={n}" for k, n in VARIANTS])
def test_every_variant_moves_trains_and_reloads(field, name):
    cfg = tiny(**{field: name})
    model, _ = make(cfg)
    model.double().float()                                  # nn.Module._apply must work
    x = torch.randint(V, (2, T))
    loss = model(x).logsumexp(-1).mean()
    loss.backward()
    assert torch.isfinite(loss)
    clone = build_model(cfg).eval()
    clone.load_state_dict(model.state_dict())
    assert torch.allclose(clone(x), model(x))


@pytest.mark.parametrize("arch", ARCHS)
def test_blocks_and_inputs_describe_the_arch(arch):
    """blocks(): the layers in depth order (per-layer gradient norms); inputs(batch): the
    forward arguments of a task batch, the encoder-decoder's src first."""
    model, src = make(tiny(arch=arch))
    tokens = torch.randint(V, (2, T))
    batch = {"input": tokens, "target": tokens} | ({} if src is None else {"src": src})
    if arch == "encoder_decoder":
        assert model.blocks() == [*model.encoder.blocks, *model.decoder.blocks]
        assert model.inputs(batch) == (src, tokens)
    else:
        assert model.inputs(batch) == (tokens,)
        want = [model.rnn] if arch in RECURRENT else list(model.stack.blocks)
        assert model.blocks() == want
    assert torch.equal(model(*model.inputs(batch)), run(model, tokens, src))


def test_d_head_decouples_the_head_size_from_the_width():
    cfg = tiny(arch="decoder", d_model=32, n_heads=8, d_head=16)        # 8 x 16 = 128 != 32
    attn = build_model(cfg).stack.blocks[0].self_attn
    assert attn.qkv_proj.weight.shape == (3 * 8 * 16, 32)
    assert attn.out_proj.weight.shape == (32, 8 * 16)
    assert tiny(d_model=30, n_heads=4, d_head=8).head_dim == 8          # no divisibility
    with pytest.raises(ConfigError, match="d_head: must be >= 1"):
        tiny(d_head=0)
    with pytest.raises(ConfigError, match="rope needs an even head dim; d_head = 7"):
        tiny(pos="rope", d_head=7)
    # unset, it is left out of the config dict: every run id from before it existed holds
    assert "d_head" not in ModelConfig().to_dict() and tiny(d_head=8).to_dict()["d_head"] == 8
