"""The explainer figures' names, captions and places in the story (REPORT.md reads
these without drawing anything, so without torch; explainers.py draws the figures)."""
from __future__ import annotations

from pathlib import Path

SENTENCE = "The animal didn't cross the street because it was too tired"
CAPTIONS = {
    "sinusoidal_encoding": "The sinusoidal positional encoding (Vaswani et al. 2017)",
    "attention_entropy_init": "Attention entropy at initialisation: 1/sqrt(d_k) scaling "
                              "keeps softmax from saturating",
    "attention_heads_layer": "Attention per head on a sample sentence (trained char LM)",
    "attention_from_it": "Where \"it\" looks: attention from the word \"it\", every layer "
                         "and head",
    "sampling": "Temperature, top-k and top-p on a trained model's next-token logits",
}


# the claim (docs/catalogue.md) each explainer illustrates: REPORT.md shows it there
CHAPTERS = {"sinusoidal_encoding": 5, "attention_entropy_init": 3,
            "attention_heads_layer": 4, "attention_from_it": 4, "sampling": 10}
assert set(CHAPTERS) == set(CAPTIONS), "an explainer without its chapter"


def chapter(filename: str) -> int | None:
    return next((c for p, c in CHAPTERS.items() if filename.startswith(p)), None)


def figure_order(filename: str) -> tuple:
    """Story order for REPORT.md: encoding, entropy, attention maps, sampling."""
    for i, prefix in enumerate(CAPTIONS):
        if filename.startswith(prefix):
            rest = filename[len(prefix):].split(".")[0]
            return (i, int(rest) if rest.isdigit() else 0, filename)
    return (len(CAPTIONS), 0, filename)


def caption(filename: str) -> str:
    for prefix, text in CAPTIONS.items():
        if filename.startswith(prefix):
            layer = filename[len(prefix):].split(".")[0]
            return text + (f", layer {layer}" if layer.isdigit() else "")
    return Path(filename).stem.replace("_", " ")
