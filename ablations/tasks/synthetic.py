"""Generated tasks: no download, each batch a pure function of (seed, split, step).

Vocabulary layout: content tokens first, special tokens (separator, [CLS]) last.
Every batch is built with a handful of vectorised torch ops on CPU.
"""
from __future__ import annotations

import dataclasses

import torch

from transformer.registry import ARCH

from .base import IGNORE, TASKS, Task, TaskParams, choice, stable_seed

# Tiny models only leave the "average over the context" plateau on recall-style tasks
# with embeddings at unit scale (docs/design.md, "Pitfalls"): std 0.02 stalls MQAR for 6k+ steps.
SMALL = {"d_model": 64, "n_heads": 4, "n_layers": 2, "embed_init_std": 1.0}


def distinct(gen: torch.Generator, batch: int, n: int, k: int) -> torch.Tensor:
    """(batch, k) ids from range(n), distinct within a row."""
    return torch.rand(batch, n, generator=gen).argsort(dim=1)[:, :k]


def seq2seq_batch(src: torch.Tensor, tgt: torch.Tensor, sep: int, arch: str) -> dict:
    """encoder_decoder: src to the encoder, [SEP]+tgt[:-1] to the decoder (SEP doubles
    as BOS). Other archs read one stream `src SEP tgt` scored only on the tgt part."""
    sep_col = torch.full((src.shape[0], 1), sep, dtype=torch.long)
    if ARCH.info(arch)["seq2seq"]:
        return {"src": src, "input": torch.cat([sep_col, tgt[:, :-1]], 1), "target": tgt}
    seq = torch.cat([src, sep_col, tgt], 1)
    target = seq[:, 1:].clone()
    target[:, :src.shape[1]] = IGNORE      # predicting the random source is not the task
    return {"input": seq[:, :-1], "target": target}


# -- multi-query associative recall ---------------------------------------------------

@dataclasses.dataclass
class MQARParams(TaskParams):
    n_pairs: int = 8
    n_queries: int = 8
    n_keys: int = 64
    n_values: int = 64

    def validate(self):
        for name in ("n_pairs", "n_queries", "n_keys", "n_values"):
            self.require(getattr(self, name) >= 1, name, f"must be >= 1, got {getattr(self, name)}")
        self.require(self.n_pairs <= self.n_keys, "n_pairs",
                     f"keys are distinct, so n_pairs <= n_keys={self.n_keys}; got {self.n_pairs}")
        self.require(self.n_queries <= self.n_pairs, "n_queries",
                     f"each key is queried at most once, so <= n_pairs={self.n_pairs}; "
                     f"got {self.n_queries}")


@TASKS.register("mqar")
class MQAR(Task):
    """k1 v1 ... kP vP  q1 a1 ... qQ aQ (Zoology): each query is one of the keys and
    its answer, the value bound to it, is scored at the position that reads the query.
    Keys are ids [0, n_keys), values [n_keys, n_keys + n_values)."""
    Params = MQARParams
    requires = {"seq2seq": False, "default_causal": True}
    # d_model 64 leaves the "average the values in context" plateau only after ~1,500
    # steps; 128 with a narrow FFN (recall is attention's job) does by ~700, in less time.
    model_defaults = {**SMALL, "d_model": 128, "d_ff": 256}
    train_defaults = {"steps": 1000, "batch_size": 64, "lr": 1.0e-3, "warmup": 50}

    @classmethod
    def vocab_size_for(cls, params, cache_dir=None):
        return params.n_keys + params.n_values

    @classmethod
    def max_positions(cls, params, arch):
        return 2 * (params.n_pairs + params.n_queries) - 1

    def make_batch(self, gen, batch_size, split):
        p = self.params
        keys = distinct(gen, batch_size, p.n_keys, p.n_pairs)
        values = p.n_keys + torch.randint(0, p.n_values, (batch_size, p.n_pairs), generator=gen)
        asked = distinct(gen, batch_size, p.n_pairs, p.n_queries)
        answers = values.gather(1, asked)
        seq = torch.cat([torch.stack([keys, values], 2).flatten(1),
                         torch.stack([keys.gather(1, asked), answers], 2).flatten(1)], 1)
        target = torch.full_like(seq[:, 1:], IGNORE)
        target[:, 2 * p.n_pairs::2] = answers
        return {"input": seq[:, :-1], "target": target}


# -- recall the token k positions back --------------------------------------------------

@dataclasses.dataclass
class RecallParams(TaskParams):
    k: int = 8
    seq_len: int = 64
    n_tokens: int = 16

    def validate(self):
        self.require(self.n_tokens >= 2, "n_tokens", f"must be >= 2, got {self.n_tokens}")
        self.require(1 <= self.k < self.seq_len, "k",
                     f"must be in [1, seq_len={self.seq_len}), got {self.k}")


@TASKS.register("recall")
class Recall(Task):
    """Random tokens; the target at position t is the input at t - k (t >= k). A
    recurrent model must carry the last k tokens through its state ("telephone game"),
    attention reads position t - k directly."""
    Params = RecallParams
    requires = {"seq2seq": False}
    model_defaults = SMALL
    # attention is done by ~200 steps; LSTM/GRU need ~1,500 at k=8
    train_defaults = {"steps": 1500, "batch_size": 32, "lr": 3.0e-3, "warmup": 50}

    @classmethod
    def vocab_size_for(cls, params, cache_dir=None):
        return params.n_tokens

    @classmethod
    def max_positions(cls, params, arch):
        return params.seq_len

    def make_batch(self, gen, batch_size, split):
        p = self.params
        x = torch.randint(0, p.n_tokens, (batch_size, p.seq_len), generator=gen)
        target = torch.full_like(x, IGNORE)
        target[:, p.k:] = x[:, :-p.k]
        return {"input": x, "target": target}


# -- copy and reverse ---------------------------------------------------------------

@dataclasses.dataclass
class CopyParams(TaskParams):
    length: int = 16
    n_tokens: int = 16

    def validate(self):
        self.require(self.length >= 1, "length", f"must be >= 1, got {self.length}")
        self.require(self.n_tokens >= 2, "n_tokens", f"must be >= 2, got {self.n_tokens}")


@TASKS.register("copy")
class Copy(Task):
    """x SEP x: reproduce a random sequence after the separator (id n_tokens)."""
    Params = CopyParams
    requires = {"default_causal": True}        # a causal stream, or a decoder over a source
    model_defaults = SMALL
    train_defaults = {"steps": 600, "batch_size": 32, "lr": 3.0e-3, "warmup": 50}
    reverse = False

    @classmethod
    def vocab_size_for(cls, params, cache_dir=None):
        return params.n_tokens + 1

    @classmethod
    def max_positions(cls, params, arch):
        return params.length if ARCH.info(arch)["seq2seq"] else 2 * params.length

    def make_batch(self, gen, batch_size, split):
        p = self.params
        x = torch.randint(0, p.n_tokens, (batch_size, p.length), generator=gen)
        return seq2seq_batch(x, x.flip(1) if self.reverse else x, p.n_tokens, self.arch)


@TASKS.register("reverse")
class Reverse(Copy):
    """x SEP reversed(x)."""
    reverse = True


# -- translation: a word mapping plus reordering ----------------------------------------

@dataclasses.dataclass
class TranslateParams(TaskParams):
    length: int = 12
    n_words: int = 32
    reorder: str = choice("chunks", "none", "reverse", "verb_final")
    chunk_len: int = 3
    language_seed: int = 0       # fixes the language; the run seed only draws sentences

    def validate(self):
        self.require(self.n_words >= 2, "n_words", f"must be >= 2, got {self.n_words}")
        self.require(self.chunk_len >= 1, "chunk_len", f"must be >= 1, got {self.chunk_len}")
        self.require(self.length >= 1 and self.length % self.chunk_len == 0, "length",
                     f"must be a positive multiple of chunk_len={self.chunk_len}, "
                     f"got {self.length}")
        self.require(self.reorder != "verb_final" or self.length >= 3 * self.chunk_len, "length",
                     f"verb_final moves the second of >= 3 phrases; length {self.length} has "
                     f"{self.length // self.chunk_len} phrases of chunk_len={self.chunk_len}")


@TASKS.register("translate")
class Translate(Task):
    """Source words [0, n_words) map one-to-one onto target words [n_words, 2 n_words)
    by a fixed random permutation, then the sentence is reordered in chunks of
    chunk_len ("phrases"): `chunks` reverses their order, `verb_final` moves the second
    phrase to the end (S V O -> S O V), `reverse` reverses every word, `none` keeps it.
    Separator / BOS: id 2 n_words. Teacher-forced `exact` equals greedy-decoding exact
    match: greedy decoding reproduces the target iff every next-token argmax is right."""
    Params = TranslateParams
    default_arch = "encoder_decoder"
    requires = {"default_causal": True, "recurrent": False}
    model_defaults = SMALL
    train_defaults = {"steps": 800, "batch_size": 32, "lr": 3.0e-3, "warmup": 50}

    def __init__(self, params, seed, arch, cache_dir=None, test_split=False):
        super().__init__(params, seed, arch, cache_dir, test_split)
        self.lexicon = self.lexicon_for(params)
        self.order = self.order_for(params)

    @staticmethod
    def lexicon_for(params) -> torch.Tensor:
        gen = torch.Generator().manual_seed(stable_seed("translate-language", params.language_seed))
        return params.n_words + torch.randperm(params.n_words, generator=gen)

    @staticmethod
    def order_for(params) -> torch.Tensor:
        """Target position j takes the source word at order[j]."""
        phrases = torch.arange(params.length).view(-1, params.chunk_len)
        if params.reorder == "reverse":
            return torch.arange(params.length).flip(0)
        if params.reorder == "chunks":
            return phrases.flip(0).flatten()
        if params.reorder == "verb_final":
            return torch.cat([phrases[:1], phrases[2:], phrases[1:2]]).flatten()
        return phrases.flatten()

    @classmethod
    def vocab_size_for(cls, params, cache_dir=None):
        return 2 * params.n_words + 1

    @classmethod
    def max_positions(cls, params, arch):
        return params.length if ARCH.info(arch)["seq2seq"] else 2 * params.length

    def make_batch(self, gen, batch_size, split):
        p = self.params
        src = torch.randint(0, p.n_words, (batch_size, p.length), generator=gen)
        tgt = self.lexicon[src][:, self.order]
        return seq2seq_batch(src, tgt, 2 * p.n_words, self.arch)
