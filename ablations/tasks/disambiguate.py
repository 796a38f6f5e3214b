"""Word-sense disambiguation from the right context: "the bank of the river".

A sequence of filler tokens holds one ambiguous word and 1 + n_distractors cue tokens
at random distinct positions, with at least one cue after the word. The word's sense,
scored at the word's own position, is decided by the NEAREST CUE AFTER IT through a
fixed lexicon table[word, cue] -> sense ("bank" + "river" -> shore, "bank" + "money"
-> institution). The other cues are distractors: with distractors=before (default) they
all precede the word, so the only cue after it decides ("the money ... the bank of the
river"); with distractors=anywhere they may also follow the deciding cue, and the model
must find the nearest one after the word (harder: a 2-layer d_model 64 encoder is at
~0.93 after 1,500 steps, against 0.999 after 500 with the default).

How much the answer depends on the right context is `right_frac`: the share of sentences
that read to the right as above; every other sentence is one of them read backwards
(the whole row reversed) with its word in a second, left-reading form, so its sense is
decided by the nearest cue BEFORE the word and its distractors follow it ("the river's
bank"). A causal model can then reach at most 1 - right_frac * (1 - 1 / n_senses)
(0.75 at right_frac 0.5); a bidirectional one must read the word's form to know which
side to look at. The left-reading forms exist only when right_frac < 1 (so the default
task, and its vocabulary, are as they were).

Why a causal model is at chance by construction: the deciding cue is drawn uniformly,
independently of everything before it, and the table is balanced (for every word each
sense is taken by exactly n_cues / n_senses cues), so given the tokens up to and
including the word every sense is exactly equally likely. The best a model that cannot
see later positions can do is accuracy 1 / n_senses and loss ln(n_senses) (0.5 and
0.693 with the defaults); a bidirectional encoder can reach 100%.

Vocabulary: fillers [0, F), words [F, F+W), cues [F+W, F+W+C), sense tags [F+W+C,
F+W+C+S), and with right_frac < 1 the left-reading words after them.
"""
from __future__ import annotations

import dataclasses
import math

import torch

from .base import IGNORE, TASKS, Task, TaskParams, choice, stable_seed
from .synthetic import SMALL, distinct


@dataclasses.dataclass
class DisambiguateParams(TaskParams):
    length: int = 16
    n_fillers: int = 16
    n_words: int = 4             # ambiguous word types
    n_cues: int = 8              # context words that decide a sense
    n_senses: int = 2            # senses per word: chance is 1 / n_senses
    n_distractors: int = 1       # cues besides the deciding one (context that misleads)
    distractors: str = choice("before", "anywhere")   # where they go: see the docstring
    language_seed: int = 0       # fixes the lexicon table; the run seed only draws sentences
    right_frac: float = 1.0      # share of sentences whose deciding cue follows the word

    def validate(self):
        for name in ("n_fillers", "n_words", "n_cues"):
            self.require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        self.require(self.n_senses >= 2, "n_senses", f"must be >= 2, got {self.n_senses}")
        self.require(self.n_cues % self.n_senses == 0, "n_cues",
                     f"must be a multiple of n_senses={self.n_senses} (a balanced table keeps "
                     f"a causal model at chance), got {self.n_cues}")
        self.require(self.n_distractors >= 0, "n_distractors",
                     f"must be >= 0, got {self.n_distractors}")
        self.require(0.0 <= self.right_frac <= 1.0, "right_frac",
                     f"must be in [0, 1], got {self.right_frac}")
        need = self.n_distractors + 2
        self.require(self.length >= need, "length", f"the word and {self.n_distractors + 1} "
                     f"cue(s) need length >= {need}, got {self.length}")

    @property
    def chance_acc(self) -> float:
        return 1.0 / self.n_senses

    @property
    def chance_loss(self) -> float:
        return math.log(self.n_senses)

    @property
    def causal_ceiling(self) -> float:
        """The best accuracy a causal model can reach: perfect on left-reading sentences,
        chance on right-reading ones."""
        return 1.0 - self.right_frac * (1.0 - self.chance_acc)

    @property
    def reads_left(self) -> bool:
        """Some sentences read to the left (the vocabulary has the left-reading forms)."""
        return self.right_frac < 1.0


@TASKS.register("disambiguate")
class Disambiguate(Task):
    """Tag an ambiguous word with the sense that the nearest cue AFTER it decides ("the
    bank of the river"): a bidirectional encoder can reach 100%, a causal model sits at
    exactly 1 / n_senses by construction (the deciding cue is independent of the past).
    With right_frac < 1 the other sentences read to the left (reversed, the word in a
    second form): a causal model's ceiling is then 1 - right_frac * (1 - 1 / n_senses)."""
    Params = DisambiguateParams
    default_arch = "encoder"
    requires = {"seq2seq": False}
    model_defaults = SMALL
    # bidirectional: 0.99 by 400 steps, 0.999 at 500 (length 16, SMALL, 3 seeds)
    train_defaults = {"steps": 500, "batch_size": 32, "lr": 3.0e-3, "warmup": 50}

    def __init__(self, params, seed, arch, cache_dir=None, test_split=False):
        super().__init__(params, seed, arch, cache_dir, test_split)
        self.table = self.table_for(params)

    @staticmethod
    def table_for(params) -> torch.Tensor:
        """(n_words, n_cues) -> sense: per word a random permutation of the cues, the
        k-th block of n_cues / n_senses cues taking sense k (balanced by construction)."""
        gen = torch.Generator().manual_seed(stable_seed("disambiguate-lexicon",
                                                        params.language_seed))
        per = params.n_cues // params.n_senses
        order = torch.rand(params.n_words, params.n_cues, generator=gen).argsort(1)
        return order.argsort(1) // per             # rank of each cue in its word's order

    @classmethod
    def vocab_size_for(cls, params, cache_dir=None):
        return (params.n_fillers + params.n_words * (2 if params.reads_left else 1)
                + params.n_cues + params.n_senses)

    @classmethod
    def max_positions(cls, params, arch):
        return params.length

    def make_batch(self, gen, batch_size, split):
        p = self.params
        F, W, C = p.n_fillers, p.n_words, p.n_cues
        seq = torch.randint(0, F, (batch_size, p.length), generator=gen)
        slots = p.n_distractors + 2                               # the word + every cue
        where = distinct(gen, batch_size, p.length, slots).sort(dim=1).values
        cues = torch.randint(0, C, (batch_size, slots), generator=gen)
        word = torch.randint(0, W, (batch_size, 1), generator=gen)
        if p.distractors == "before":                             # word, then its cue last
            rank = torch.full((batch_size, 1), slots - 2, dtype=torch.long)
        else:                                                     # any rank but the last
            rank = torch.randint(0, slots - 1, (batch_size, 1), generator=gen)
        tokens = (F + W + cues).scatter(1, rank, F + word)
        seq.scatter_(1, where, tokens)
        deciding = cues.gather(1, rank + 1)                       # the nearest cue after
        sense = self.table[word, deciding]
        target = torch.full_like(seq, IGNORE)
        target.scatter_(1, where.gather(1, rank), F + W + C + sense)
        if p.reads_left:                      # drawn last: right-reading rows stay as they were
            left = torch.rand(batch_size, generator=gen) >= p.right_frac
            seq[left], target[left] = seq[left].flip(1), target[left].flip(1)
            is_word = (seq >= F) & (seq < F + W) & left[:, None]
            seq[is_word] += W + C + p.n_senses                # the left-reading form
        return {"input": seq, "target": target}
