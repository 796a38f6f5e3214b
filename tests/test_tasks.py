"""The task contract, for every registered task: shapes, determinism, fixed val sets,
what each target means, the offline text path, config errors, and learnability."""
import os

# datasets reads these at import and otherwise tries DNS even for local files.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from ablations.config import resolve  # noqa: E402
from ablations.tasks import IGNORE, TASKS, build_task, suited_archs  # noqa: E402
from transformer.validation import ConfigError  # noqa: E402

# tasks that draw batches (a measurement task, `measures = True`, has none)
DATA = [name for name in TASKS.names() if not TASKS.get(name).measures]
CASES = [(name, arch) for name in DATA for arch in suited_archs(name)]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("task-cache")


def task(name, arch=None, cache_dir=None, seed=0, **params):
    arch = arch or TASKS.get(name).default_arch
    return build_task({"name": name, **params}, seed, arch, cache_dir)


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name,arch", CASES)
def test_batch_contract(name, arch, cache):
    t = task(name, arch, cache)
    batch = t.train_batch(0, 5, "cpu")
    assert set(batch) == ({"src", "input", "target"} if arch == "encoder_decoder"
                          else {"input", "target"})
    for key, value in batch.items():
        assert value.dtype == torch.long and value.dim() == 2 and value.shape[0] == 5, key
    assert batch["target"].shape == batch["input"].shape
    for key in ("input", "src"):
        if key in batch:
            assert 0 <= batch[key].min() and batch[key].max() < t.vocab_size
    scored = batch["target"][batch["target"] != IGNORE]
    assert scored.numel() > 0 and scored.min() >= 0 and scored.max() < t.vocab_size
    # the resolved config (task defaults + this arch) is valid and sized to the task
    cfg = resolve([{"task": {"name": name}, "model": {"arch": arch}}], cache)
    assert cfg["model"]["vocab_size"] == t.vocab_size


@pytest.mark.parametrize("name", DATA)
def test_deterministic_from_seed_and_step(name, cache):
    a, b = task(name, cache_dir=cache), task(name, cache_dir=cache)
    assert same(a.train_batch(7, 4, "cpu"), b.train_batch(7, 4, "cpu"))
    assert not same(a.train_batch(7, 4, "cpu"), a.train_batch(8, 4, "cpu"))
    assert not same(a.train_batch(7, 4, "cpu"), a.train_batch(7, 4, "cpu", rank=1))
    other_seed = task(name, cache_dir=cache, seed=1)
    assert not same(a.train_batch(7, 4, "cpu"), other_seed.train_batch(7, 4, "cpu"))


@pytest.mark.parametrize("name", DATA)
def test_val_sets_fixed_and_apart_from_train(name, cache):
    t = task(name, cache_dir=cache)
    v1, v2 = t.val_sets(3, 8, "cpu"), t.val_sets(3, 8, "cpu")
    assert "" in v1 and len(v1[""]) == 3
    assert all(same(x, y) for x, y in zip(v1[""], v2[""]))
    val_rows = {tuple(r.tolist()) for b in v1[""] for r in b["input"]}
    train_rows = {tuple(r.tolist()) for s in range(20) for r in t.train_batch(s, 8, "cpu")["input"]}
    assert len(val_rows & train_rows) <= len(val_rows) // 10


@pytest.mark.parametrize("name,arch", CASES)
def test_metrics(name, arch, cache):
    t = task(name, arch, cache)
    batch = t.train_batch(0, 4, "cpu")
    logits = torch.randn(*batch["target"].shape, t.vocab_size)
    m = t.metrics(logits, batch)
    assert "loss" in m and "acc" in m and all(v.dim() == 0 for v in m.values())
    assert set(m) == set(TASKS.info(name)["writes"])      # what grids may name, declared
    perfect = torch.nn.functional.one_hot(batch["target"].clamp(min=0), t.vocab_size).float() * 50
    assert t.metrics(perfect, batch)["acc"] == 1.0


# -- what each target means -------------------------------------------------------------

def test_recall_target_is_input_k_back():
    b = task("recall", k=5, seq_len=20).train_batch(0, 8, "cpu")
    assert (b["target"][:, :5] == IGNORE).all()
    assert torch.equal(b["target"][:, 5:], b["input"][:, :-5])


@pytest.mark.parametrize("name", ["copy", "reverse"])
def test_copy_and_reverse(name):
    n, t = 6, task(name, length=6, n_tokens=10)
    b = t.train_batch(0, 8, "cpu")
    src, sep = b["input"][:, :n], 10
    assert (b["input"][:, n] == sep).all()
    want = src.flip(1) if name == "reverse" else src
    assert torch.equal(b["target"][:, n:], want) and (b["target"][:, :n] == IGNORE).all()
    ed = task(name, "encoder_decoder", length=6, n_tokens=10).train_batch(0, 8, "cpu")
    want = ed["src"].flip(1) if name == "reverse" else ed["src"]
    assert torch.equal(ed["target"], want)
    assert (ed["input"][:, 0] == sep).all() and torch.equal(ed["input"][:, 1:], want[:, :-1])


def test_mqar_answers_are_bound_values():
    p = dict(n_pairs=5, n_queries=3, n_keys=20, n_values=10)
    b = task("mqar", **p).train_batch(0, 16, "cpu")
    seq = torch.cat([b["input"], b["target"][:, -1:]], 1)
    for row, tgt in zip(seq, b["target"]):
        keys, values = row[:10:2].tolist(), row[1:10:2].tolist()
        assert len(set(keys)) == 5 and max(keys) < 20 and min(values) >= 20
        scored = (tgt != IGNORE).nonzero().flatten().tolist()
        assert scored == [10, 12, 14]
        for i in scored:
            assert tgt[i] == values[keys.index(int(row[i]))]


@pytest.mark.parametrize("arch", ["encoder", "decoder"])
def test_order_label_is_first_entity(arch):
    t = task("order", arch, length=10, n_fillers=5, n_entities=3)
    b = t.train_batch(0, 64, "cpu")
    cls = t.vocab_size - 1
    at = 0 if arch == "encoder" else -1
    assert (b["input"][:, at] == cls).all()
    assert ((b["target"] != IGNORE).sum(1) == 1).all()
    for row, label in zip(b["input"], b["target"][:, at]):
        entities = [int(x) for x in row if 5 <= x < cls]
        assert len(entities) == 2 and entities[0] != entities[1] and label == entities[0]


def test_order_bag_of_words_is_uninformative():
    # Swapping the two entities keeps the bag of tokens and flips the label.
    t = task("order", "encoder", length=8, n_fillers=4, n_entities=2)
    b = t.train_batch(0, 512, "cpu")
    assert 0.4 < (b["target"][:, 0] == 4).float().mean() < 0.6


def test_neighbor_label_is_the_entity_right_of_the_marker():
    t = task("neighbor", "encoder", length=9, n_fillers=5, n_entities=3)
    b = t.train_batch(0, 256, "cpu")
    marker = t.vocab_size - 1
    assert ((b["target"] != IGNORE).sum(1) == 1).all() and (b["target"][:, 0] != IGNORE).all()
    for row, label in zip(b["input"].tolist(), b["target"][:, 0].tolist()):
        at = row.index(marker)
        assert row.count(marker) == 1 and 0 < at < len(row) - 1
        assert label == row[at + 1] != row[at - 1]
        assert [x for x in row if 5 <= x < marker] == [row[at - 1], row[at + 1]]
    # a sentence's reverse is a sample too: the marker's place is symmetric
    places = torch.tensor([r.index(marker) for r in b["input"].tolist()])
    assert places.min() == 1 and places.max() == 7


def test_a_task_names_the_readout_its_targets_assume():
    assert resolve([{"task": {"name": "neighbor"}}])["model"]["readout"] == "mean"
    with pytest.raises(ConfigError, match="model.readout: task 'neighbor' .* mean, got 'token'"):
        resolve([{"task": {"name": "neighbor"}, "model": {"readout": "token"}}])
    with pytest.raises(ConfigError, match="model.readout: task 'lm' .* token, got 'mean'"):
        resolve([{"task": {"name": "lm"}, "model": {"readout": "mean"}}])
    # the default readout is left out of the resolved config: no run id moved
    assert "readout" not in resolve([{"task": {"name": "order"}}])["model"]


@pytest.mark.parametrize("reorder", ["none", "reverse", "chunks", "verb_final"])
def test_translate_mapping_and_order(reorder):
    p = dict(length=6, n_words=8, chunk_len=2, reorder=reorder)
    t = task("translate", "encoder_decoder", **p)
    b = t.train_batch(0, 32, "cpu")
    lexicon = t.lexicon
    assert sorted(lexicon.tolist()) == list(range(8, 16))
    mapped = lexicon[b["src"]]
    want = {"none": [0, 1, 2, 3, 4, 5], "reverse": [5, 4, 3, 2, 1, 0],
            "chunks": [4, 5, 2, 3, 0, 1], "verb_final": [0, 1, 4, 5, 2, 3]}[reorder]
    assert torch.equal(b["target"], mapped[:, want])
    # the decoder-only layout carries the same pair: src SEP tgt, scored on tgt
    d = task("translate", "decoder", **p).train_batch(0, 32, "cpu")
    assert torch.equal(d["target"][:, 6:], lexicon[d["input"][:, :6]][:, want])
    # the language is fixed by language_seed, not by the run seed
    assert torch.equal(task("translate", seed=3, **p).lexicon, lexicon)
    assert not torch.equal(task("translate", language_seed=1, **p).lexicon, lexicon)


def test_lm_shift_and_eval_lengths(cache):
    t = task("lm", cache_dir=cache, seq_len=32, eval_lengths=[32, 96])
    b = t.train_batch(0, 4, "cpu")
    assert torch.equal(b["input"][:, 1:], b["target"][:, :-1])
    v = t.val_sets(2, 4, "cpu")
    assert set(v) == {"", "@32", "@96"} and v["@96"][0]["input"].shape == (4, 96)
    # val crops come from the held-out tail
    tail = t.corpus.tokens[t.n_train:].long()
    first = v[""][0]["input"][0]
    assert (tail.unfold(0, 32, 1) == first).all(dim=1).any()


def test_mlm_targets_only_at_masked_positions(cache):
    t = task("mlm", cache_dir=cache, seq_len=64)
    b = t.train_batch(0, 32, "cpu")
    scored = b["target"] != IGNORE
    assert 0.1 < scored.float().mean() < 0.2
    assert (b["input"][~scored] != t.mask_id).all()
    assert (b["input"][scored] == t.mask_id).float().mean() > 0.6
    assert (b["input"] == b["target"])[scored].float().mean() < 0.25


def test_file_source_with_bpe_offline(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"line {i}: the quick brown fox jumps over the lazy dog {i % 7}\n"
                              for i in range(2000)))
    params = dict(source=f"file:{corpus}", tokenizer="bpe", vocab_size=300, seq_len=16)
    t = task("lm", cache_dir=tmp_path / "cache", **params)
    assert t.vocab_size == 300 and int(t.corpus.tokens.max()) < 300
    assert list((tmp_path / "cache" / "text").glob("*/tokenizer.json"))
    text = t.decode(t.train_batch(0, 1, "cpu")["input"][0])
    assert "the" in text or "fox" in text
    from ablations.tasks import corpus as corpus_mod
    corpus_mod._LOADED.clear()                          # force a read from the disk cache
    again = task("lm", cache_dir=tmp_path / "cache", **params)
    assert torch.equal(again.corpus.tokens, t.corpus.tokens)
    m = task("mlm", cache_dir=tmp_path / "cache", **params)
    assert m.vocab_size == 301 and m.mask_id == 300


# -- configuration errors ---------------------------------------------------------------

@pytest.mark.parametrize("params,arch,field,words", [
    ({"name": "recall", "kk": 3}, "decoder", "task.kk", ["did you mean 'k'"]),
    ({"name": "lm", "tokenizer": "wordpiece"}, "decoder", "task.tokenizer", ["char", "bpe"]),
    ({"name": "order", "label_at": "middle"}, "encoder", "task.label_at",
     ["auto", "first", "last"]),
    ({"name": "recall", "k": "four"}, "decoder", "task.k", ["expected int"]),
    ({"name": "recall", "k": 64}, "decoder", "task.k", ["seq_len"]),
    ({"name": "mqar"}, "encoder", "model.arch", ["decoder", "lstm"]),
    ({"name": "translate", "length": 7}, "decoder", "task.length", ["chunk_len"]),
    ({"name": "lm", "source": "ftp:x"}, "decoder", "task.source", ["python-docs"]),
    ({"name": "lm", "source": "file:/no/such.txt"}, "decoder", "task.source", ["no such file"]),
    ({"name": "lm", "source": "hf:wikitext:wikitext-2-raw-v1"}, "decoder", "task.source",
     ["network"]),
    ({"name": "lm", "seq_len": 100000}, "decoder", "task.seq_len", ["corpus"]),
])
def test_config_errors(params, arch, field, words):
    with pytest.raises(ConfigError) as info:
        build_task(params, 0, arch)
    assert info.value.field == field and "\n" not in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_values_from_the_command_line_are_coerced():
    cfg = resolve([{"task": {"name": "lm", "seq_len": "32", "eval_lengths": "64"}}])
    assert cfg["task"]["seq_len"] == 32 and cfg["task"]["eval_lengths"] == [64]


def test_learned_positions_must_cover_seq_len():
    with pytest.raises(ConfigError, match="model.max_len"):
        resolve([{"task": {"name": "lm", "seq_len": 64},
                  "model": {"pos": "learned", "max_len": 32}}])
    # longer eval_lengths are allowed: failing past the table is a result, not a config error
    resolve([{"task": {"name": "lm", "seq_len": 32, "eval_lengths": [128]},
              "model": {"pos": "learned", "max_len": 32}}])


# -- learnability: tiny models beat chance clearly within a few hundred steps -------------

def train(name, arch, steps, task_params=None, model=None, lr=3e-3, batch_size=32):
    from transformer import ModelConfig, build_model
    torch.manual_seed(0)
    t = build_task({"name": name, **(task_params or {})}, 0, arch)
    cls = TASKS.get(name)
    cfg = {**cls.model_defaults, "d_model": 32, "n_heads": 2, "d_ff": 64, **(model or {})}
    net = build_model(ModelConfig(**cfg, arch=arch, vocab_size=t.vocab_size))
    def run(b):
        return net(b["src"], b["input"]) if arch == "encoder_decoder" else net(b["input"])
    opt = torch.optim.AdamW(net.parameters(), lr=lr)
    for step in range(steps):
        batch = t.train_batch(step, batch_size, "cpu")
        loss = t.metrics(run(batch), batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        val = t.val_sets(4, 64, "cpu")[""]
        return sum(float(t.metrics(run(b), b)["acc"]) for b in val) / len(val)


def test_order_needs_positions():
    params = {"length": 8}
    assert train("order", "encoder", 150, params) > 0.9
    # without positions an encoder is a bag of words: exactly at chance
    assert train("order", "encoder", 150, params, {"pos": "none"}) < 0.6


def test_neighbor_needs_the_sign_of_an_offset():
    params = {"length": 8}
    assert train("neighbor", "encoder", 150, params, {"pos": "rope"}) > 0.9
    # distances only (bidirectional ALiBi) under a mean readout: exactly at chance
    assert train("neighbor", "encoder", 150, params, {"pos": "alibi"}) < 0.6


def test_recall_is_learned():
    assert train("recall", "decoder", 200, {"k": 2, "seq_len": 16, "n_tokens": 8}) > 0.8


def test_translate_is_learned():
    acc = train("translate", "encoder_decoder", 250, {"length": 6, "n_words": 8, "chunk_len": 2})
    assert acc > 0.8


def test_shipped_corpora_are_fixed_files():
    """python-docs is frozen byte for byte (the text every committed result trained on,
    whatever the Python version); shakespeare is the second corpus; result.json names
    the bytes a run read."""
    from ablations.tasks.corpus import fingerprint, read_text
    from ablations.training.run import corpus_of
    assert fingerprint("python-docs") == "4c105a1c0165690685f1706c9c88f7ee9c41153d"
    assert len(read_text("python-docs")) == 465048
    text = read_text("shakespeare")
    assert text.startswith("First Citizen:") and len(text) == 1115394
    assert corpus_of({"task": {"name": "lm", "source": "shakespeare"}})["sha1"] == \
        fingerprint("shakespeare")
    assert corpus_of({"task": {"name": "copy"}}) is None
    t = task("lm", cache_dir=None, source="shakespeare", seq_len=16)
    assert t.make_batch(t.generator("train", 0), 2, "train")["input"].shape == (2, 16)
