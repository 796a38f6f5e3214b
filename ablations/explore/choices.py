"""Which trained variants the explorer compares, per shipped grid, and its fixed prompts.

Variants are named by their manifest label (seed 0), not by run id: a retrained grid
keeps its labels while a changed config changes every id.
"""
from __future__ import annotations

import dataclasses

SEED_SENTENCE = "The animal didn't cross the street because it was too tired"


@dataclasses.dataclass(frozen=True)
class Choice:
    variants: tuple[str, ...]          # manifest labels offered on the page
    shown: tuple[str, ...]             # the ones ticked when the grid opens (2-4)
    prompts: tuple[tuple[str, str], ...]   # (prompt, what it shows)
    seed: int = 0


LM_PROMPTS = (
    (SEED_SENTENCE, "the Explainer's seed sentence: where does \"it\" look?"),
    ("The return statement leaves the current function call",
     "a sentence in the style of the training text (Python's documentation)"),
)
# order task: fillers w0..w15, entities E0..E3; the label is the entity that came first
ORDER_PROMPTS = (
    ("w1 w7 E0 w3 w3 w9 E2 w4 w0 w5 w11 w2", "order: E0 comes before E2"),
    ("w1 w7 E2 w3 w3 w9 E0 w4 w0 w5 w11 w2", "the same bag of words, E2 first"),
)
# translate: source words s0..s63; a sentence of 24 words comes out reversed
TRANSLATE_PROMPTS = (
    (" ".join(f"s{i}" for i in range(24)),
     "reordering: the 24 words come out last-first"),
    ("s40 s3 s3 s17 s8 s31 s0 s12 s25 s6 s14 s9 s60 s2 s33 s47 s5 s19 s28 s51 s11 s44 s7 s63",
     "another sentence, repeated word s3"),
)

GRIDS: dict[str, Choice] = {
    "lm_extrapolation": Choice(
        variants=("pe: pos=none", "pe: pos=sinusoidal", "pe: pos=learned", "pe: pos=rope",
                  "pe: pos=alibi", "pe: pos=t5"),
        shown=("pe: pos=none", "pe: pos=sinusoidal", "pe: pos=rope", "pe: pos=alibi"),
        prompts=LM_PROMPTS),
    "attention_scaling": Choice(
        variants=("attn_scale=sqrt, d_head=64", "attn_scale=none, d_head=64",
                  "attn_scale=sqrt, d_head=256", "attn_scale=none, d_head=256"),
        shown=("attn_scale=sqrt, d_head=256", "attn_scale=none, d_head=256"),
        prompts=LM_PROMPTS),
    "positional_order": Choice(
        variants=("pos=none", "pos=sinusoidal", "pos=learned", "pos=rope", "pos=alibi"),
        shown=("pos=none", "pos=sinusoidal", "pos=rope", "pos=alibi"),
        prompts=ORDER_PROMPTS),
    "architectures": Choice(
        variants=("translate: encoder_decoder", "translate: no_cross_attention",
                  "translate: decoder_prefix"),
        shown=("translate: encoder_decoder", "translate: no_cross_attention"),
        prompts=TRANSLATE_PROMPTS),
}
