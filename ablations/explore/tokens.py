"""A prompt typed as text -> the model inputs of a run's task, and a label per token id.

Text tasks use the run's own tokenizer (`tasks.text.prompt_ids`). Generated tasks have
no text, so their ids get names a user can type: the order task's fillers `w0..` and
entities `E0..` (its [CLS] is added where the task puts it), translate's source words
`s0..` (the target, `t0..`, is the model's own greedy translation, fed back as the
decoder's input the way teacher forcing feeds the reference).
"""
from __future__ import annotations

import dataclasses

import torch

from transformer.config import ConfigError

MAX_PROMPT = 160          # characters: the server's cap, and far more than any shown model


@dataclasses.dataclass
class Inputs:
    stream: list[int]                  # the tokens whose positions the page shows
    args: tuple[torch.Tensor, ...]     # model(*args)
    src: list[int] | None = None       # an encoder-decoder's source
    position: int = -1                 # the position shown first (its prediction)
    align: list[int] | None = None     # translate: the source position of target word j


class Prompter:
    """Built once per run: `labels` (one display string per id) and `inputs(text)`."""

    def __init__(self, cfg: dict, task, model):
        self.cfg, self.task, self.model = cfg, task, model
        self.kind = cfg["task"]["name"]
        if self.kind not in ("lm", "order", "translate"):
            raise ConfigError("task.name", f"the explorer shows lm, order and translate "
                              f"runs; got {self.kind!r}")
        self.labels = self._labels()

    def _labels(self) -> list[str]:
        p, V = self.task.params, self.model.cfg.vocab_size
        if self.kind == "lm":
            corpus = self.task.corpus
            if isinstance(corpus.decoder, str):
                shown = {" ": "␣", "\n": "⏎", "\t": "⇥"}
                return [shown.get(c, c) for c in corpus.decoder] + \
                    [f"<{i}>" for i in range(len(corpus.decoder), V)]
            return [corpus.decoder.id_to_token(i) or f"<{i}>" for i in range(V)]
        if self.kind == "order":
            return ([f"w{i}" for i in range(p.n_fillers)] + [f"E{i}" for i in range(p.n_entities)]
                    + ["[CLS]"])
        return ([f"s{i}" for i in range(p.n_words)] + [f"t{i}" for i in range(p.n_words)]
                + ["[SEP]"])

    def inputs(self, text: str) -> Inputs:
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("prompt", "is empty; type a sentence (or tokens) to run")
        if len(text) > MAX_PROMPT:
            raise ConfigError("prompt", f"has {len(text)} characters; at most {MAX_PROMPT}")
        if self.kind == "lm":
            return self._check(self._text(text))
        if self.kind == "order":
            return self._check(self._order(text))
        return self._check(self._translate(text))

    def _text(self, text: str) -> Inputs:
        from ..tasks.text import prompt_ids
        try:
            ids = prompt_ids(self.cfg, text, self.task.cache_dir)
        except ConfigError as e:               # its field is generate.prompt
            raise ConfigError("prompt", str(e).split(": ", 1)[-1]) from None
        return Inputs(ids, (torch.tensor([ids]),), position=len(ids) - 1)

    def _words(self, text: str, allowed: range) -> list[int]:
        index = {label: i for i, label in enumerate(self.labels)}
        ids = [index.get(w, -1) for w in text.split()]
        bad = [w for w, i in zip(text.split(), ids) if i not in allowed]
        if bad:
            names = [self.labels[allowed.start], self.labels[allowed.stop - 1]]
            raise ConfigError("prompt", f"unknown word(s) {' '.join(bad[:5])}; valid: "
                              f"{names[0]} .. {names[1]}, separated by spaces")
        return ids

    def _order(self, text: str) -> Inputs:
        p = self.task.params
        words = self._words(text, range(p.n_fillers + p.n_entities))
        cls_id = len(self.labels) - 1
        first = p.label_at == "first" or (p.label_at == "auto" and self.task.arch == "encoder")
        ids = [cls_id] + words if first else words + [cls_id]
        return Inputs(ids, (torch.tensor([ids]),), position=0 if first else len(ids) - 1)

    def _translate(self, text: str) -> Inputs:
        p = self.task.params
        src = self._words(text, range(p.n_words))
        sep, n = 2 * p.n_words, len(src)
        if self.model.cfg.arch == "encoder_decoder":
            s = torch.tensor([src])
            out = self.model.generate(torch.tensor([[sep]]), n, temperature=0, src=s)
            stream = out[0, :-1].tolist()            # [SEP] + translation[:-1]
            align = self.task.order.tolist() if n == p.length else None
            return Inputs(stream, (s, torch.tensor([stream])), src=src, position=0, align=align)
        out = self.model.generate(torch.tensor([src + [sep]]), n, temperature=0)
        stream = out[0, :-1].tolist()                # src [SEP] translation[:-1]
        return Inputs(stream, (torch.tensor([stream]),), position=n)

    def _check(self, inputs: Inputs) -> Inputs:
        cfg = self.model.cfg
        longest = max(len(inputs.stream), len(inputs.src or ()))
        if cfg.pos == "learned" and longest > cfg.max_len:
            raise ConfigError("prompt", f"is {longest} tokens; this run's learned positional "
                              f"table has {cfg.max_len}")
        return inputs
