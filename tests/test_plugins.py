"""Plugins: a module name or a .py file, looked up in the working directory and beside
the grid file; `ablate test --plugin` runs the conformance tests on a plugin's
variants; the README's own plugin example passes them."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from ablations import conformance
from ablations import grid as grids
from ablations.cli import main as cli
from ablations.plugins import import_modules, names
from transformer import ConfigError, ModelConfig
from transformer.registry import POSITIONAL

ROOT = Path(__file__).resolve().parents[1]


def variant(folder: Path, module: str, pos_name: str) -> Path:
    path = folder / f"{module}.py"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""
        from transformer.positional import PositionalEncoding
        from transformer.registry import POSITIONAL
        if {pos_name!r} not in POSITIONAL:
            @POSITIONAL.register({pos_name!r})
            class Plugged(PositionalEncoding):
                '''A plugin variant: adds nothing.'''
    """))
    return path


def readme_plugin(folder: Path, module: str = "readme_variants") -> Path:
    """The README's "Add a variant" example, as a user would save it."""
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(# my_variants\.py\n.*?)```", text, re.S)[1]
    path = folder / f"{module}.py"
    path.write_text(code)
    return path


def test_a_plugin_file_relative_to_the_working_directory(tmp_path, monkeypatch):
    variant(tmp_path / "sub", "file_plugin", "file_pos")
    monkeypatch.chdir(tmp_path)
    assert import_modules(["sub/file_plugin.py"]) == ["file_plugin"]
    assert "file_pos" in POSITIONAL and names(["sub/file_plugin.py"]) == ["file_plugin"]


def test_a_grid_finds_its_plugins_beside_the_grid_file(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "grids"
    variant(folder, "beside_grid", "beside_pos")
    variant(folder / "more", "beside_file", "beside_file_pos")
    (folder / "g.yaml").write_text(textwrap.dedent("""
        name: g
        claim: Plugins sit next to the grid.
        task: {name: order, length: 8}
        base: {model: {arch: encoder, d_model: 16, n_heads: 2, n_layers: 1}}
        axes: {model.pos: [beside_pos, beside_file_pos]}
        plugins: [beside_grid, more/beside_file.py]
    """))
    monkeypatch.chdir(tmp_path / "..")                # anywhere but the grid's folder
    grid = grids.load(folder / "g.yaml")
    assert names(grid.plugins) == ["beside_grid", "beside_file"]
    assert cli(["run", str(folder / "g.yaml"), "--results", str(tmp_path / "r"),
                "--dry-run"]) == 0
    assert "pos=beside_file_pos" in capsys.readouterr().out


def test_a_missing_plugin_file_is_one_line_naming_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"plugin: 'nope\.py': no such file in "):
        import_modules(["nope.py"], search=[tmp_path / "grids"])


def test_the_readme_example_encodes_positions_past_max_len(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import_modules([readme_plugin(tmp_path).name])
    pe = POSITIONAL.get("scaled_sinusoidal")(ModelConfig(d_model=8, max_len=16))
    out = pe.embed(torch.zeros(2, 40, 8), 0)              # lm's eval_lengths go past it
    assert out.shape == (2, 40, 8) and torch.isfinite(out).all()
    assert torch.equal(pe.embed(torch.zeros(1, 4, 8), 30), out[:1, 30:34])


def test_ablate_test_needs_a_checkout_and_a_plugin_with_variants(tmp_path, monkeypatch,
                                                                  capsys):
    monkeypatch.chdir(tmp_path)
    variant(tmp_path, "empty_plugin", "file_pos")        # already registered: adds nothing
    import_modules(["empty_plugin"])
    assert cli(["test", "--plugin", "empty_plugin"]) == 2
    assert "registers no model variant" in capsys.readouterr().err
    monkeypatch.setattr(conformance, "TESTS", tmp_path / "tests" / "test_model.py")
    assert cli(["test", "--plugin", "empty_plugin"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a checkout" in err


@pytest.mark.slow
def test_ablate_test_runs_the_conformance_tests_on_the_readme_plugin(tmp_path):
    readme_plugin(tmp_path, "my_variants")
    proc = subprocess.run([sys.executable, "-m", "ablations", "test", "--plugin",
                           "my_variants.py"], cwd=tmp_path, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "scaled_sinusoidal" in proc.stderr and " passed" in proc.stdout
    assert "past_max_len" not in proc.stdout                # nothing failed there
