"""Word-order tasks: what an order-blind model cannot do, and what a model that sees only
distances cannot do. Both are generated like synthetic.py's tasks (each batch a pure
function of seed, split and step); vocabulary: fillers, entities, then specials."""
from __future__ import annotations

import dataclasses

import torch

from transformer.registry import ARCH

from .base import IGNORE, TASKS, Task, TaskParams, choice
from .synthetic import SMALL, distinct


# -- word order: which entity came first ----------------------------------------------

@dataclasses.dataclass
class EntityParams(TaskParams):
    """`length` filler tokens among which two of `n_entities` entities stand; a
    subclass checks `length` for its own layout first."""
    length: int = 12
    n_fillers: int = 16
    n_entities: int = 4

    def validate(self):
        self.require(self.n_fillers >= 1, "n_fillers", f"must be >= 1, got {self.n_fillers}")
        self.require(self.n_entities >= 2, "n_entities", f"must be >= 2, got {self.n_entities}")


class EntityTask(Task):
    """Vocabulary: the fillers, the entities, then one special token (last)."""

    @classmethod
    def vocab_size_for(cls, params, cache_dir=None):
        return params.n_fillers + params.n_entities + 1


@dataclasses.dataclass
class OrderParams(EntityParams):
    label_at: str = choice("auto", "first", "last")

    def validate(self):
        self.require(self.length >= 2, "length",
                     f"two entities need length >= 2, got {self.length}")
        super().validate()


@TASKS.register("order")
class Order(EntityTask):
    """Fillers with two distinct entities at random positions; the label (scored at the
    [CLS] position) is the entity that came first: "dog bit man" vs "man bit dog". Both
    orders have the same bag of tokens, so an order-blind model sits at 0.5.

    [CLS] goes first for an encoder (BERT) and last for causal archs, where it has
    seen everything; label_at overrides that (an encoder with the causal mask and
    [CLS] first can see nothing: the masking ablation)."""
    Params = OrderParams
    default_arch = "encoder"
    requires = {"seq2seq": False}
    model_defaults = SMALL
    # attention is done by ~200 steps; an LSTM sits at 1/n_entities for ~800 first
    train_defaults = {"steps": 1500, "batch_size": 32, "lr": 3.0e-3, "warmup": 50}

    @classmethod
    def max_positions(cls, params, arch):
        return params.length + 1

    def make_batch(self, gen, batch_size, split):
        p = self.params
        seq = torch.randint(0, p.n_fillers, (batch_size, p.length), generator=gen)
        who = p.n_fillers + distinct(gen, batch_size, p.n_entities, 2)
        where = distinct(gen, batch_size, p.length, 2)
        seq.scatter_(1, where, who)
        label = torch.where(where[:, 0] < where[:, 1], who[:, 0], who[:, 1])
        cls_col = torch.full((batch_size, 1), self.vocab_size - 1, dtype=torch.long)
        first = p.label_at == "first" or (p.label_at == "auto"
                                            and not ARCH.info(self.arch)["default_causal"])
        seq = torch.cat([cls_col, seq] if first else [seq, cls_col], 1)
        target = torch.full_like(seq, IGNORE)
        target[:, 0 if first else -1] = label
        return {"input": seq, "target": target}


# -- relative order: which entity stands right of the marker --------------------------

@dataclasses.dataclass
class NeighborParams(EntityParams):
    def validate(self):
        self.require(self.length >= 3, "length",
                     f"a marker between two entities needs length >= 3, got {self.length}")
        super().validate()


@TASKS.register("neighbor")
class Neighbor(EntityTask):
    """Fillers with a marker and two distinct entities beside it, one on each side
    ("... a M b ..."); the label is the entity right of the marker. Both stand at
    distance 1 from it, so only the sign of an offset tells them apart. The label is
    read through a mean readout (model.readout: mean; no [CLS] token), so no position is
    privileged: a model without positions (the two orders are permutations of each
    other) and a bidirectional one that sees only distances (ALiBi: a sequence and its
    reverse, as likely as it, look the same) sit at 0.5 by construction."""
    Params = NeighborParams
    default_arch = "encoder"
    requires = {"seq2seq": False}
    readouts = ("mean",)
    model_defaults = {**SMALL, "readout": "mean"}
    train_defaults = {"steps": 500, "batch_size": 32, "lr": 3.0e-3, "warmup": 50}

    @classmethod
    def max_positions(cls, params, arch):
        return params.length

    def make_batch(self, gen, batch_size, split):
        p = self.params
        seq = torch.randint(0, p.n_fillers, (batch_size, p.length), generator=gen)
        at = 1 + torch.randint(0, p.length - 2, (batch_size,), generator=gen)  # the marker
        left, right = (p.n_fillers + distinct(gen, batch_size, p.n_entities, 2)).unbind(1)
        rows = torch.arange(batch_size)
        seq[rows, at] = self.vocab_size - 1
        seq[rows, at - 1] = left
        seq[rows, at + 1] = right
        target = torch.full_like(seq, IGNORE)
        target[:, 0] = right                   # one label a sequence: the readout pools
        return {"input": seq, "target": target}
