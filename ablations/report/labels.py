"""Axis and legend labels with units for metric names and config keys."""
from __future__ import annotations

METRIC_LABELS = {
    "loss": "loss (nats/token)", "acc": "accuracy (fraction correct)",
    "exact": "exact-match rate (fraction of sequences)", "ppl": "perplexity",
    "tokens_per_s": "throughput (tokens/s)", "wall_s": "wall time (s)",
    "params": "parameters (count)", "peak_mem_mb": "peak memory (MB)",
    "diverged": "diverged (fraction of runs)", "grad_norm": "gradient norm (L2)",
    "grad_norm_qk": "query/key gradient norm (L2)",
    "attn_entropy": "attention entropy (nats)", "lr": "learning rate",
    "attn_entropy_frac": "attention entropy (fraction of uniform)",
    "train_s": "training time (s)",
    "steps": "training steps", "diverged_step": "divergence step",
}
# `<m>@<L>_<band>`: the part of an evaluation crop of length L a metric averages over
BANDS = {"beyond": "positions past the training length"}
KEY_LABELS = {
    "d_model": "d_model (dimensions)", "n_heads": "heads (count)", "n_layers": "layers (count)",
    "seq_len": "sequence length (tokens)", "k": "distance k (tokens)", "lr": "learning rate",
    "warmup": "warmup (steps)", "d_ff": "FFN width (dimensions)", "head_dim": "d_k (dimensions)",
    "d_k": "d_k (dimensions)", "d_head": "head size d_k (dimensions)",
    "batch_size": "batch size (sequences)", "label": "variant",
    "length": "sequence length (tokens)", "distance": "distance (tokens)",
}


def metric_label(metric: str) -> str:
    """`val_loss@256` -> "validation loss (nats/token) at length 256"; an `@` suffix that
    is no length names an evaluation (`@causal`), a step (`@init`, `@step100`) or the
    whole curve (`@auc`), never a length."""
    name, _, at = metric.partition("@")
    base = name.split("/")[0]
    for prefix in ("val_", "train_", "test_"):
        if base.startswith(prefix):
            base = base[len(prefix):]
    text = METRIC_LABELS.get(base, name.replace("_", " "))
    split = {"val_": "validation ", "train_": "training ", "test_": "test "}.get(
        name[:name.find("_") + 1], "")
    extra = f", {name.split('/', 1)[1]}" if "/" in name else ""
    words = at_label(at)
    if words.startswith(" (") and text.endswith(")") and not extra:   # one parenthesis
        head, _, unit = text[:-1].rpartition(" (")
        return f"{split}{head}{words[:-1]}; {unit})"
    return f"{split}{text}{extra}{words}"


def at_label(at: str) -> str:
    """The words for a metric's `@` suffix ('' for none)."""
    if not at:
        return ""
    length, _, band = at.partition("_")
    if length.isdigit() and band in BANDS:
        return f" at length {length}, {BANDS[band]}"
    if at == "init":
        return " at initialisation"
    if at == "auc":
        return " (mean over training)"
    if at.startswith("step") and at[4:].isdigit():
        return f" at step {at[4:]}"
    if at.isdigit():
        return f" at length {at}"
    return f" (evaluation: {at})"


def key_label(key: str) -> str:
    short = key.split(".")[-1]
    return KEY_LABELS.get(short, short.replace("_", " "))
