"""Loss per position band of the lm task's longer evaluations: `val_loss@L_beyond` scores
only the positions past the training length (the whole crop's mean also counts the
first seq_len positions, seen in training)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ablations.metric_names import check_metric
from ablations.tasks import TASKS, build_task
from ablations.training.scoring import score
from transformer import ModelConfig, build_model
from transformer.validation import ConfigError


def lm(**params):
    task = build_task({"name": "lm", "seq_len": 8, "eval_lengths": [16, 32], **params}, 0,
                      "decoder")
    torch.manual_seed(0)
    net = build_model(ModelConfig(vocab_size=task.vocab_size, d_model=16, n_heads=2,
                                  n_layers=1, pos="alibi"))
    return task, net


def test_the_beyond_band_scores_only_positions_past_the_training_length():
    task, net = lm()
    sets = task.val_sets(2, 4, "cpu")
    out = score(net, task, sets)
    assert {"val_loss@16_beyond", "val_acc@16_beyond", "val_loss@32_beyond"} <= set(out)
    assert not any(k.endswith("_beyond") for k in out if "@" not in k)   # none in-length
    net.eval()
    with torch.no_grad():
        far, near = [], []
        for b in sets["@32"]:
            logits = net(b["input"])
            far.append(F.cross_entropy(logits[:, 8:].flatten(0, 1), b["target"][:, 8:].flatten()))
            near.append(F.cross_entropy(logits[:, :8].flatten(0, 1), b["target"][:, :8].flatten()))
    beyond = float(sum(far) / len(far))
    assert out["val_loss@32_beyond"] == pytest.approx(beyond, rel=1e-5)
    # the whole crop is the token-weighted mean of the two bands (3/4 of it lies beyond)
    whole = 0.25 * float(sum(near) / len(near)) + 0.75 * beyond
    assert out["val_loss@32"] == pytest.approx(whole, rel=1e-5)


def test_a_training_length_batch_writes_only_the_declared_metrics():
    task, net = lm()
    b = task.val_sets(1, 2, "cpu")[""][0]
    assert set(task.metrics(net(b["input"]), b)) == set(TASKS.info("lm")["writes"])
    long = task.val_sets(1, 2, "cpu")["@16"][0]
    assert {k.partition("@")[2] for k in task.metrics(net(long["input"]), long)} \
        <= {""} | set(TASKS.info("lm")["bands"])


def test_grids_may_name_a_band_of_a_task_that_has_it():
    check_metric("checks[0].metric", "val_loss@256_beyond", ["lm"], None)
    check_metric("checks[0].metric", "test_acc@64_beyond", ["lm"], None)
    with pytest.raises(ConfigError, match="unknown band.*valid: beyond"):
        check_metric("checks[0].metric", "val_loss@256_past", ["lm"], None)
    with pytest.raises(ConfigError, match="no task of the grid has bands"):
        check_metric("checks[0].metric", "val_acc@256_beyond", ["mqar"], None)
