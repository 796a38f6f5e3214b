"""Plots a sceptic can read: labels that say what an `@` suffix is, intervals that stay
inside a bounded metric's range, reference lines, and effects drawn as effects."""
from __future__ import annotations

import pytest

from ablations.report.labels import metric_label


@pytest.mark.parametrize("metric,want", [
    ("val_loss@256", "validation loss (nats/token) at length 256"),
    ("val_loss@causal", "validation loss (evaluation: causal; nats/token)"),
    ("grad_norm@init", "gradient norm (L2) at initialisation"),
    ("attn_entropy_frac@init", "attention entropy (fraction of uniform) at initialisation"),
    ("val_loss@256_beyond",
     "validation loss (nats/token) at length 256, positions past the training length"),
    ("test_loss", "test loss (nats/token)"),
    ("distinct_2@t13", "distinct 2 (evaluation: t13)"),
    ("grad_norm/layer3", "gradient norm (L2), layer3"),
])
def test_an_at_suffix_reads_as_what_it_is(metric, want):
    assert metric_label(metric) == want
