"""The `disambiguate` task ("the bank of the river"): what its label means, that a causal
model is at chance by construction, and that a bidirectional encoder learns it.
(The shared task contract — shapes, determinism, fixed val sets — is test_tasks.py's,
which runs over every registered task.)"""
import collections

import pytest
import torch

from ablations.tasks import IGNORE, build_task
from transformer.validation import ConfigError

P = dict(length=12, n_fillers=6, n_words=3, n_cues=6, n_senses=2)


def task(arch="encoder", seed=0, **params):
    return build_task({"name": "disambiguate", **{**P, **params}}, seed, arch)


def decode(t, row, tgt):
    """(word, cues before it, cues after it in order, label sense) of one row."""
    F, W, C = t.params.n_fillers, t.params.n_words, t.params.n_cues
    (at,) = (tgt != IGNORE).nonzero().flatten().tolist()
    word = int(row[at]) - F
    cues = [(i, int(x) - F - W) for i, x in enumerate(row.tolist()) if F + W <= x < F + W + C]
    return (word, [c for i, c in cues if i < at], [c for i, c in cues if i > at],
            int(tgt[at]) - F - W - C, at)


@pytest.mark.parametrize("distractors", ["before", "anywhere"])
def test_label_is_decided_by_the_nearest_cue_after_the_word(distractors):
    t = task(distractors=distractors, n_distractors=2)
    b = t.train_batch(0, 256, "cpu")
    assert ((b["target"] != IGNORE).sum(1) == 1).all()
    after_counts = collections.Counter()
    for row, tgt in zip(b["input"], b["target"]):
        word, before, after, sense, at = decode(t, row, tgt)
        assert 0 <= word < 3 and len(before) + len(after) == 3 and after
        assert sense == int(t.table[word, after[0]])
        after_counts[len(after)] += 1
    if distractors == "before":
        assert set(after_counts) == {1}
    else:                                           # distractors also follow the deciding cue
        assert set(after_counts) == {1, 2, 3}


def test_deterministic_and_the_lexicon_is_fixed_by_language_seed():
    a, b = task(), task()
    assert all(torch.equal(a.train_batch(3, 8, "cpu")[k], b.train_batch(3, 8, "cpu")[k])
               for k in ("input", "target"))
    assert not torch.equal(a.train_batch(3, 8, "cpu")["input"], a.train_batch(4, 8, "cpu")["input"])
    assert torch.equal(task(seed=5).table, a.table)
    assert not torch.equal(task(language_seed=1).table, a.table)


def test_table_is_balanced_so_a_causal_model_is_at_chance():
    t = task(n_senses=3, n_cues=9)
    for row in t.table:                  # every sense taken by n_cues / n_senses cues
        assert sorted(collections.Counter(row.tolist()).values()) == [3, 3, 3]
    assert t.params.chance_acc == pytest.approx(1 / 3)
    assert t.params.chance_loss == pytest.approx(1.0986, abs=1e-4)


@pytest.mark.parametrize("distractors", ["before", "anywhere"])
def test_everything_up_to_the_word_says_nothing_about_the_label(distractors):
    """The best causal predictor: the majority label for each exact prefix (tokens up to
    and including the word, plus its position) learned on one sample, scored on another,
    is at chance; the best bidirectional one (table lookup) is at 100%."""
    t = task(length=8, n_fillers=2, n_words=2, n_cues=4, distractors=distractors,
             n_distractors=1)
    def rows(step):
        b = t.train_batch(step, 4096, "cpu")
        at = (b["target"] != IGNORE).float().argmax(1)
        label = b["target"].gather(1, at[:, None]).flatten()
        keys = [tuple(r[:a + 1].tolist()) for r, a in zip(b["input"], at.tolist())]
        return keys, label.tolist()
    votes = collections.defaultdict(collections.Counter)
    for step in range(8):
        for k, y in zip(*rows(step)):
            votes[k][y] += 1
    keys, labels = rows(100)
    seen = [(votes[k].most_common(1)[0][0], y) for k, y in zip(keys, labels) if votes[k]]
    assert len(seen) > 2000
    acc = sum(p == y for p, y in seen) / len(seen)
    assert abs(acc - 0.5) < 0.04, acc


@pytest.mark.parametrize("params,field,words", [
    ({"n_cues": 7}, "task.n_cues", ["multiple of n_senses=2"]),
    ({"n_senses": 1}, "task.n_senses", [">= 2"]),
    ({"length": 3, "n_distractors": 2}, "task.length", [">= 4"]),
    ({"distractors": "after"}, "task.distractors", ["before", "anywhere"]),
    ({"n_distractors": -1}, "task.n_distractors", [">= 0"]),
])
def test_config_errors(params, field, words):
    with pytest.raises(ConfigError) as info:
        task(**params)
    assert info.value.field == field and "\n" not in str(info.value)
    for w in words:
        assert w in str(info.value)


def test_bidirectional_learns_it_and_causal_stays_at_chance():
    from transformer import ModelConfig, build_model

    def train(causal, steps=120):
        torch.manual_seed(0)
        t = task(length=8)
        net = build_model(ModelConfig(arch="encoder", vocab_size=t.vocab_size, d_model=32,
                                      n_heads=2, n_layers=2, d_ff=64, pos="rope",
                                      embed_init_std=1.0, causal=causal))
        opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
        for step in range(steps):
            b = t.train_batch(step, 32, "cpu")
            loss = t.metrics(net(b["input"]), b)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            val = t.val_sets(4, 256, "cpu")[""]
            return sum(float(t.metrics(net(b["input"]), b)["acc"]) for b in val) / len(val)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)              # tiny model: one thread is fastest, and fair to others
    try:
        assert train(causal=False) > 0.9
        assert abs(train(causal=True) - 0.5) < 0.06      # 1024 scored positions: ±0.03 (2σ)
    finally:
        torch.set_num_threads(threads)


# -- how much the answer depends on the right context: right_frac -----------------------

def test_right_frac_one_is_the_task_as_it_was():
    a, b = task(), task(right_frac=1.0)
    assert a.vocab_size == b.vocab_size == 6 + 3 + 6 + 2
    assert all(torch.equal(a.train_batch(3, 64, "cpu")[k], b.train_batch(3, 64, "cpu")[k])
               for k in ("input", "target"))


@pytest.mark.parametrize("right_frac", [0.0, 0.5])
def test_left_reading_rows_are_right_reading_ones_reversed(right_frac):
    t, plain = task(right_frac=right_frac, n_distractors=2), task(n_distractors=2)
    F, W, C, S = 6, 3, 6, 2
    assert t.vocab_size == plain.vocab_size + W                 # the left-reading forms
    b, same = t.train_batch(0, 512, "cpu"), plain.train_batch(0, 512, "cpu")
    left = (b["input"] >= F + W + C + S).any(1)
    assert left.float().mean().item() == pytest.approx(1 - right_frac, abs=0.07)
    assert torch.equal(b["input"][~left], same["input"][~left])
    assert torch.equal(b["target"][left], same["target"][left].flip(1))
    for row, tgt in zip(b["input"][left], b["target"][left]):
        (at,) = (tgt != IGNORE).nonzero().flatten().tolist()
        word = int(row[at]) - (F + W + C + S)
        before = [int(x) - F - W for x in row[:at] if F + W <= x < F + W + C]
        after = [x for x in row[at + 1:] if F + W <= x < F + W + C]
        assert 0 <= word < W and len(before) == 1 and len(after) == 2   # distractors after
        assert int(tgt[at]) - F - W - C == int(t.table[word, before[-1]])


def test_a_causal_models_ceiling_falls_with_right_frac():
    assert [task(right_frac=r).params.causal_ceiling for r in (0, 0.5, 1)] == [1.0, 0.75, 0.5]
    with pytest.raises(ConfigError) as info:
        task(right_frac=1.5)
    assert info.value.field == "task.right_frac" and "[0, 1]" in str(info.value)
