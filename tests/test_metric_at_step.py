"""`metric@step<N>`: a logged metric's last value by step N of training (learning speed),
and `metric@auc`, the area under its logged curve over the run, read from metrics.csv by
the report like `metric@init`."""
from __future__ import annotations

import math

import pytest

from ablations.metric_names import check_metric
from ablations.report.labels import metric_label
from ablations.report.table import load, logged_value
from report_fixtures import make_grid
from transformer.validation import ConfigError


def test_a_metric_at_a_step_reads_the_last_value_logged_by_then(tmp_path):
    spec = {"name": "g", "axes": {"model.pos": ["rope"]}, "seeds": [0]}
    gdir = make_grid(tmp_path, spec, lambda c, s: {"val_loss": 1.0},
                     curve_steps=(0, 100, 200))
    grid = load(gdir)
    rid = grid.runs["run_id"].iloc[0]
    assert logged_value(grid, rid, "val_loss@step100") == pytest.approx(1.75)
    assert logged_value(grid, rid, "val_loss@step150") == pytest.approx(1.75)
    assert logged_value(grid, rid, "val_loss@step0") == logged_value(grid, rid, "val_loss@init")
    assert math.isnan(logged_value(grid, rid, "val_acc@step100"))          # never logged
    check_metric("checks[0].metric", "val_acc@step100", ["order"], None)
    with pytest.raises(ConfigError, match="unknown metric"):
        check_metric("checks[0].metric", "val_acu@step100", ["order"], None)
    assert metric_label("val_acc@step100") == "validation accuracy (fraction correct) at step 100"


def test_a_metric_over_the_run_is_the_area_under_its_curve_by_training_fraction(tmp_path):
    spec = {"name": "g", "axes": {"model.pos": ["rope"]}, "seeds": [0]}
    short = load(make_grid(tmp_path / "a", spec, lambda c, s: {"val_loss": 1.0},
                           curve_steps=(0, 100, 200)))
    long = load(make_grid(tmp_path / "b", spec, lambda c, s: {"val_loss": 1.0},
                          curve_steps=(0, 200, 400)))
    # 2.5, 1.75, 1.0 at fractions 0, 0.5, 1 (and the resumed duplicate of the last step)
    for grid in (short, long):           # the same curve over twice the steps: same area
        rid = grid.runs["run_id"].iloc[0]
        assert logged_value(grid, rid, "val_loss@auc") == pytest.approx(1.75)
        assert math.isnan(logged_value(grid, rid, "val_acc@auc"))         # never logged
    check_metric("checks[0].metric", "val_acc@auc", ["order"], None)
    with pytest.raises(ConfigError, match="unknown metric"):
        check_metric("checks[0].metric", "val_acu@auc", ["order"], None)
    assert metric_label("val_acc@auc") == ("validation accuracy (mean over training; "
                                           "fraction correct)")
