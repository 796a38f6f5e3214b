"""Budget matching: solve_width lands each architecture within 5% of a parameter target."""
import pytest

from ablations.config import resolve
from ablations.grid.budget import count_params, solve_width
from transformer import ModelConfig, build_model
from transformer.validation import ConfigError

RECALL = {"name": "recall", "seq_len": 64, "k": 8}
TRANSLATE = {"name": "translate", "reorder": "chunks"}


def resolver(task, **model):
    calls = []

    def at(width):
        calls.append(width)
        return resolve([{"task": task}, {"model": {**model, "d_model": width}}])
    at.calls = calls
    return at


@pytest.mark.parametrize("task, model, target", [
    (RECALL, {"arch": "decoder"}, 100_000),
    (RECALL, {"arch": "lstm"}, 100_000),
    (RECALL, {"arch": "gru"}, 100_000),
    (RECALL, {"arch": "rnn"}, 100_000),
    (RECALL, {"arch": "lstm", "n_layers": 1}, 37_000),
    (TRANSLATE, {"arch": "encoder_decoder"}, 240_000),
    (TRANSLATE, {"arch": "encoder_decoder", "cross_attention": False}, 240_000),
    (TRANSLATE, {"arch": "decoder", "n_layers": 4}, 240_000),
])
def test_within_tolerance(task, model, target):
    at = resolver(task, **model)
    width, params = solve_width(at, target)
    assert abs(params - target) <= 0.05 * target
    cfg = at(width)["model"]
    assert params == count_params(cfg) == build_model(ModelConfig(**cfg)).num_params()
    assert len(at.calls) < 60          # bracket + bisection, not a linear scan


def test_closest_valid_width_among_sparse_ones():
    # RoPE with 8 heads needs an even head dimension: only multiples of 16 are valid
    at = resolver(RECALL, arch="decoder", pos="rope", n_heads=8)
    width, params = solve_width(at, 100_000, tolerance=0.5)
    assert width % 16 == 0
    for other in (width - 16, width + 16):
        assert abs(count_params(at(other)["model"]) - 100_000) >= abs(params - 100_000)


def test_recurrent_widths_differ_from_the_transformers():
    widths = {arch: solve_width(resolver(RECALL, arch=arch), 100_000)[0]
              for arch in ("decoder", "lstm", "gru", "rnn")}
    assert widths["rnn"] > widths["gru"] > widths["lstm"]
    assert widths["rnn"] > 2 * widths["lstm"] - 10


@pytest.mark.parametrize("target", [1_000, 10**12])
def test_unreachable_target_is_one_line_config_error(target):
    with pytest.raises(ConfigError) as e:
        solve_width(resolver(RECALL, arch="decoder"), target)
    assert e.value.field == "match.params"
    assert "closest is" in str(e.value) and "d_model=" in str(e.value)
    assert "\n" not in str(e.value)


def test_coarse_granularity_is_reported_not_hidden():
    # encoder_decoder at n_heads=4 steps 56 -> 60: 186,704 -> 213,480 parameters
    with pytest.raises(ConfigError, match=r"match.params: .*closest is 186,704 \(d_model=56"):
        solve_width(resolver(TRANSLATE, arch="encoder_decoder"), 200_000)


def test_a_broken_cell_raises_its_own_error():
    with pytest.raises(ConfigError) as e:
        solve_width(resolver(RECALL, arch="decoder", n_kv_heads=3), 100_000)
    assert e.value.field == "model.n_kv_heads"


def test_bad_target():
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ConfigError, match="match.params"):
            solve_width(resolver(RECALL, arch="lstm"), bad)
