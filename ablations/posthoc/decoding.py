"""What post-hoc decoding evaluations measure (compute.py calls these).

- `sample_metrics`: diversity and quality of a run's samples. distinct_n is the share of
  unique n-grams among all n-grams of all samples pooled (Li et al. 2016), which mixes
  two things, so they are also apart: distinct_2_within, a sample's own share of unique
  bigrams (averaged over samples: does one text vary?), and distinct_2_across, one minus
  the mean Jaccard overlap of two samples' bigram sets (do the samples differ from each
  other? 0 when all are one text, as greedy's are by construction); repetition is the
  share of a sample's 4-grams that already occurred earlier in the same sample (the
  "the as the as" loop); loglik is the mean log-probability per generated token under
  the model itself, untempered and unfiltered, and so bound to fall as the temperature
  rises; loglik_scorer is the same under an independent judge (another model trained on
  the same text), which can disagree.
- `decode_speed`: greedy generation timed with and without the KV cache at each length,
  after one warm-up, and whether both decode the very same tokens.
"""
from __future__ import annotations

import time
from statistics import fmean

import torch

NGRAMS = (1, 2, 3)
REPEAT_N = 4


def distinct(samples: list[list[int]], n: int) -> float:
    grams = [tuple(s[i:i + n]) for s in samples for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def repetition(sample: list[int], n: int = REPEAT_N) -> float:
    seen, repeats, total = set(), 0, 0
    for i in range(len(sample) - n + 1):
        gram = tuple(sample[i:i + n])
        repeats += gram in seen
        total += 1
        seen.add(gram)
    return repeats / total if total else float("nan")


@torch.no_grad()
def loglik(net, prompt: torch.Tensor, tokens: torch.Tensor) -> float:
    """Mean log p(token | everything before it) over the generated tokens.
    prompt (1, T0), tokens (1, T0 + n): the prompt and its continuation."""
    T0 = prompt.shape[1]
    logits = net.full_logits(tokens[:, :-1], None)[:, T0 - 1:].float()
    logp = logits.log_softmax(-1).gather(-1, tokens[:, T0:, None]).squeeze(-1)
    return float(logp.mean())


def across(samples: list[list[int]], n: int = 2) -> float:
    """1 - the mean Jaccard overlap of two samples' n-gram sets, over every pair of
    samples: 0 when the samples are one text, 1 when no two share an n-gram."""
    sets = [{tuple(s[i:i + n]) for i in range(len(s) - n + 1)} for s in samples]
    pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1:] if a or b]
    if not pairs:
        return float("nan")
    return 1.0 - sum(len(a & b) / len(a | b) for a, b in pairs) / len(pairs)


def sample_metrics(net, prompt: torch.Tensor, outputs: list[torch.Tensor],
                   judge=None) -> dict[str, float]:
    """outputs: (1, T0 + n) tensors, each the prompt and one sample; judge: a scorer
    model (loglik_scorer), or None."""
    T0 = prompt.shape[1]
    gen = [o[0, T0:].tolist() for o in outputs]
    out = {f"distinct_{n}": distinct(gen, n) for n in NGRAMS}
    out["distinct_2_within"] = fmean([distinct([g], 2) for g in gen])
    out["distinct_2_across"] = across(gen)
    out["repetition"] = fmean([repetition(g) for g in gen])
    out["loglik"] = fmean([loglik(net, prompt, o) for o in outputs])
    if judge is not None:
        out["loglik_scorer"] = fmean([loglik(judge, prompt, o) for o in outputs])
    return out


def decode_speed(net, prompt: torch.Tensor, lengths: list[int]) -> dict[str, float]:
    """Tokens per second of greedy decoding with and without the cache at each length."""
    net.generate(prompt, 8, temperature=0)                             # warm-up
    net.generate(prompt, 8, temperature=0, use_cache=False)
    out: dict[str, float] = {}
    for n in sorted(lengths):
        timed = {}
        for cache in (True, False):
            t = time.perf_counter()
            timed[cache] = net.generate(prompt, n, temperature=0, use_cache=cache)
            out[f"tps_{'cache' if cache else 'nocache'}@{n}"] = n / (time.perf_counter() - t)
        out[f"speedup@{n}"] = out[f"tps_cache@{n}"] / out[f"tps_nocache@{n}"]
        out[f"same_tokens@{n}"] = float(torch.equal(timed[True], timed[False]))
    out["same_tokens"] = min(out[f"same_tokens@{n}"] for n in lengths)
    return out
