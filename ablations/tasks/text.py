"""Real text: causal language modelling (`lm`) and BERT-style masked LM (`mlm`).

Train batches are random crops of the train split; validation uses evenly spaced
crops of the held-out split (the last 10% of the text), the same for every seed. A run
with a test split (train.test_batches > 0) halves the held-out text: val, then test. `lm`
adds one validation set per `eval_lengths` entry (key "@L") for length extrapolation.

Learned positions: `check_config` rejects seq_len beyond the table, but not longer
eval_lengths: evaluating past the table is the point of the positional-encoding
grid, where the model's own error ("learned PE past its table") is the result the
wrapper records for that "@L" set.
"""
from __future__ import annotations

import dataclasses

import torch

from transformer.registry import ARCH
from transformer.validation import ConfigError

from .base import IGNORE, TASKS, Task, TaskParams, choice, sequence_metrics
from .corpus import SHIPPED, load_corpus


@dataclasses.dataclass
class TextParams(TaskParams):
    source: str = "python-docs"        # python-docs | shakespeare | file:PATH | hf:NAME[:CONFIG]
    tokenizer: str = choice("char", "bpe")
    vocab_size: int = 1024             # bpe only: the trained vocabulary size
    seq_len: int = 64

    def validate(self):
        self.require(self.source in SHIPPED or self.source.startswith(("file:", "hf:")),
                     "source", f"unknown source {self.source!r}; valid: "
                     f"{', '.join(SHIPPED)}, file:PATH, hf:NAME[:CONFIG]")
        # Byte-level BPE starts from 256 byte tokens; fewer cannot represent the text.
        self.require(self.tokenizer != "bpe" or self.vocab_size >= 257, "vocab_size",
                     "must be >= 257 for byte-level "
                     f"BPE (256 byte tokens + merges), got {self.vocab_size}")
        self.require(self.seq_len >= 1, "seq_len", f"must be >= 1, got {self.seq_len}")


class TextTask(Task):
    window_extra = 0    # tokens a crop needs beyond the model's input length

    def __init__(self, params, seed, arch, cache_dir=None, test_split=False):
        super().__init__(params, seed, arch, cache_dir, test_split)
        self.corpus = load_corpus(params.source, params.tokenizer, params.vocab_size, cache_dir)
        self.n_train = self.corpus.n_train
        self.n_val = len(self.corpus.tokens) - self.n_train
        self._vocab_size = type(self).vocab_size_for(params, cache_dir)
        held = min(self.region(s)[1] for s in (("val", "test") if test_split else ("val",)))
        for field, length in self.val_lengths().values():
            need = length + self.window_extra
            if held < need or self.n_train < need:
                raise ConfigError(f"task.{field}", f"crops of {length} tokens do not fit the "
                                  f"corpus (train {self.n_train}, held-out {held} tokens); "
                                  "use a shorter length or a larger source")

    def region(self, split: str) -> tuple[int, int]:
        """(first token, number of tokens) of a split. The held-out tail is all val, or
        with a test split its first half val and its second half test."""
        if split == "train":
            return 0, self.n_train
        half = self.n_val // 2 if self.test_split else self.n_val
        if split == "val":
            return self.n_train, half
        return self.n_train + half, self.n_val - half

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @classmethod
    def base_vocab_size(cls, params, cache_dir=None) -> int:
        if params.tokenizer == "bpe":
            return params.vocab_size
        return load_corpus(params.source, "char", 0, cache_dir).vocab_size

    @classmethod
    def max_positions(cls, params, arch) -> int:
        return params.seq_len

    def decode(self, ids) -> str:
        return self.corpus.decode(ids)

    def windows(self, starts: torch.Tensor, length: int) -> torch.Tensor:
        idx = starts[:, None] + torch.arange(length + self.window_extra)
        return self.corpus.tokens[idx].long()

    def crops_to_batch(self, windows: torch.Tensor, gen: torch.Generator) -> dict:
        raise NotImplementedError

    def make_batch(self, gen, batch_size, split, length=None):
        length = length or self.params.seq_len
        lo, n = self.region(split)
        starts = lo + torch.randint(0, n - length - self.window_extra + 1, (batch_size,),
                                    generator=gen)
        return self.crops_to_batch(self.windows(starts, length), gen)

    def val_sets(self, n_batches, batch_size, device, split="val"):
        lo, n = self.region(split)
        out = {}
        for key, (_, length) in self.val_lengths().items():
            last = n - length - self.window_extra
            starts = lo + torch.linspace(0, last, n_batches * batch_size).long()
            out[key] = [{k: v.to(device) for k, v in self.crops_to_batch(
                            self.windows(chunk, length), self.generator(split, key, i)).items()}
                        for i, chunk in enumerate(starts.split(batch_size))]
        return out

    def val_lengths(self) -> dict[str, tuple[str, int]]:
        """Validation set key -> (the parameter that sets its length, crop length)."""
        return {"": ("seq_len", self.params.seq_len)}

    writes = ("loss", "acc")

    def metrics(self, logits, batch):
        m = sequence_metrics(logits, batch["target"])
        return {"loss": m["loss"], "acc": m["acc"]}   # exact match of a text crop means nothing


# -- causal LM ------------------------------------------------------------------------

@dataclasses.dataclass
class LMParams(TextParams):
    eval_lengths: list[int] = dataclasses.field(default_factory=list)
    prefix: int = 0              # a crop's first N tokens are context: cont_loss scores the rest
    prefix_loss: bool = True     # false: the prefix's own targets are not trained (prefix LM)

    def validate(self):
        super().validate()
        bad = [n for n in self.eval_lengths if n < 1]
        self.require(not bad, "eval_lengths", f"lengths must be >= 1, got {bad}")
        self.require(0 <= self.prefix < self.seq_len, "prefix", f"must be in [0, seq_len="
                     f"{self.seq_len}) (a continuation must remain), got {self.prefix}")


@TASKS.register("lm")
class LMTask(TextTask):
    """Next-token prediction. An `encoder` with causal=False sees the token it must
    predict; that cheat is the masking ablation, so it is allowed, not rejected. With
    `prefix` P the crop is a prefix and its continuation: `cont_loss` scores only the
    tokens after the first P, and `prefix_loss: false` trains only on them (the prefix-LM
    objective, Raffel et al. 2020 §3.2), which a prefix LM (model.prefix_len <= P) needs:
    inside its prefix every next token is in view."""
    Params = LMParams
    requires = {"seq2seq": False}
    model_defaults = {"d_model": 128, "n_heads": 4, "n_layers": 2, "pos": "rope"}
    train_defaults = {"steps": 600, "batch_size": 32, "lr": 3.0e-3, "warmup": 50}
    window_extra = 1
    writes = ("loss", "acc", "cont_loss")

    @classmethod
    def check_config(cls, params, model) -> None:
        super().check_config(params, model)
        seen = 0 if "prefix_len" in model.ignored_fields() else model.prefix_len
        if seen > 1 and params.prefix_loss:
            raise ConfigError("task.prefix_loss", f"must be false for a prefix LM "
                              f"(model.prefix_len={seen}): its prefix's next tokens are in view")
        if seen > params.prefix:
            raise ConfigError("task.prefix", f"must be >= model.prefix_len={seen} (a "
                              f"target inside the model's prefix is in view), got {params.prefix}")

    @classmethod
    def vocab_size_for(cls, params, cache_dir=None) -> int:
        return cls.base_vocab_size(params, cache_dir)

    def val_lengths(self):
        return {"": ("seq_len", self.params.seq_len),
                **{f"@{n}": ("eval_lengths", n) for n in self.params.eval_lengths}}

    @property
    def cont_start(self) -> int:
        """The first target position of the continuation: the one predicting token P."""
        return max(self.params.prefix - 1, 0)

    def crops_to_batch(self, windows, gen):
        target = windows[:, 1:]
        if not self.params.prefix_loss:
            target = target.clone()
            target[:, :self.cont_start] = IGNORE
        return {"input": windows[:, :-1], "target": target}

    # "beyond": only the positions past the training length, where the model has never
    # been; the whole crop's mean also counts the first seq_len positions, seen in training
    bands = ("beyond",)

    def metrics(self, logits, batch):
        out = super().metrics(logits, batch)
        cont = self.cont_start
        out["cont_loss"] = sequence_metrics(logits[:, cont:], batch["target"][:, cont:])["loss"]
        start = self.params.seq_len
        if batch["target"].shape[1] > start:
            far = sequence_metrics(logits[:, start:], batch["target"][:, start:])
            out.update({"loss@beyond": far["loss"], "acc@beyond": far["acc"]})
        return out


# -- masked LM ------------------------------------------------------------------------

@dataclasses.dataclass
class MLMParams(TextParams):
    mask_prob: float = 0.15

    def validate(self):
        super().validate()
        self.require(0 < self.mask_prob < 1, "mask_prob",
                     f"must be in (0, 1), got {self.mask_prob}")


@TASKS.register("mlm")
class MLMTask(TextTask):
    """BERT masking: of the chosen positions 80% become [MASK] (the id after the text
    vocabulary), 10% a random token, 10% stay; only chosen positions are scored."""
    Params = MLMParams
    default_arch = "encoder"
    requires = {"seq2seq": False, "default_causal": False, "recurrent": False}
    model_defaults = {"d_model": 128, "n_heads": 4, "n_layers": 2, "pos": "rope"}
    train_defaults = {"steps": 600, "batch_size": 32, "lr": 3.0e-3, "warmup": 50}

    @classmethod
    def vocab_size_for(cls, params, cache_dir=None) -> int:
        return cls.base_vocab_size(params, cache_dir) + 1

    @property
    def mask_id(self) -> int:
        return self.vocab_size - 1

    def crops_to_batch(self, windows, gen):
        chosen = torch.rand(windows.shape, generator=gen) < self.params.mask_prob
        how = torch.rand(windows.shape, generator=gen)
        noise = torch.randint(0, self.corpus.n_symbols, windows.shape, generator=gen)
        inp = torch.where(chosen & (how < 0.8), self.mask_id, windows)
        inp = torch.where(chosen & (how >= 0.8) & (how < 0.9), noise, inp)
        return {"input": inp, "target": torch.where(chosen, windows, IGNORE)}


def prompt_ids(cfg: dict, prompt: str, cache_dir=None) -> list[int]:
    """Tokenize a prompt with the task's own vocabulary (text tasks only)."""
    from . import build_task
    task = build_task(cfg["task"], 0, cfg["model"]["arch"], cache_dir)
    corpus = getattr(task, "corpus", None)
    where = "generate.prompt"
    if corpus is None:
        raise ConfigError(where, f"task {cfg['task']['name']!r} has no text vocabulary to "
                          "sample in; generate needs a text task (lm)")
    if ARCH.info(cfg["model"]["arch"])["seq2seq"]:
        raise ConfigError(where, "generate samples from one stream; valid archs: " + ", ".join(
            a for a in ARCH.names() if not ARCH.info(a)["seq2seq"]))
    if isinstance(corpus.decoder, str):                        # char vocabulary
        bad = sorted({c for c in prompt if c not in corpus.decoder})
        if bad:
            raise ConfigError(where, f"characters {''.join(bad)!r} are not in the corpus "
                              "vocabulary")
        return [corpus.decoder.index(c) for c in prompt]
    return corpus.decoder.encode(prompt).ids
