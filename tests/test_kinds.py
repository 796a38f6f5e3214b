"""The check and plot kinds (ablations/report/kinds.py): every registered kind is
complete, entries are validated from the declarations, and `better:` is never guessed."""
from __future__ import annotations

import pytest

from ablations.report.kinds import CHECKS, PLOTS, better_of, check_entry, loaded
from transformer.validation import ConfigError

loaded()


@pytest.mark.parametrize("kinds,name", [(k, n) for k in (CHECKS, PLOTS) for n in k],
                         ids=lambda x: x if isinstance(x, str) else x.what)
def test_every_kind_is_declared_with_its_function(kinds, name):
    kind = kinds[name]
    assert kind.doc and callable(kind.fn)
    assert set(kind.selectors) <= set(kind.keys) and set(kind.axes) <= set(kind.keys)
    assert {k for k, _ in kind.evals} <= set(kind.keys)


def test_a_second_registration_of_a_kind_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        PLOTS.register("bar", "again")(lambda grid, runs, plot: None)


@pytest.mark.parametrize("metric,want", [("val_loss", "lower"), ("test_loss@256", "lower"),
                                         ("val_perplexity", "lower"), ("val_acc", "higher"),
                                         ("val_exact", "higher"), ("speedup@1024", "higher"),
                                         ("distinct_2@t13", "higher")])
def test_better_follows_the_metric_when_left_out(metric, want):
    assert better_of({"metric": metric}) == want
    assert better_of({"metric": metric, "better": "higher"}) == "higher"   # said: kept


def test_a_check_on_a_metric_without_a_direction_must_say_better():
    check = {"claim": "c", "metric": "attn_entropy_frac", "compare": {"a": 1},
             "against": {"a": 2}}
    with pytest.raises(ConfigError, match=r"checks\[0\].better: required"):
        check_entry("checks[0]", check, CHECKS)
    check_entry("checks[0]", {**check, "better": "lower"}, CHECKS)
    check_entry("checks[0]", {"claim": "c", "metric": "attn_entropy_frac",   # no direction
                              "select": {"a": 1}, "below": 0.5}, CHECKS)    # needed
