"""model.pt: a finished run's final weights and resolved config, for figures and post-hoc
evaluations drawn from the trained model (torch is imported only here, when asked)."""
from __future__ import annotations

import os
from pathlib import Path

from .layout import MODEL


def write_model(run_path: Path, config: dict, state_dict: dict) -> None:
    """Atomically: a reader never loads half a file."""
    import torch
    path = Path(run_path) / MODEL
    # torch names the archive's inner folder after the file: same name, other folder
    tmp = Path(run_path) / ".writing" / MODEL
    tmp.parent.mkdir(exist_ok=True)
    torch.save({"config": config, "state_dict": state_dict}, tmp)
    os.replace(tmp, path)
    tmp.parent.rmdir()


def read_model(run_path: Path, model_config: dict | None = None):
    """(resolved config, network in eval mode with the run's weights). `model_config`
    builds another model around the same weights (they must fit it exactly);
    FileNotFoundError when the run kept no weights."""
    import torch

    from transformer import build_model
    saved = torch.load(Path(run_path) / MODEL, map_location="cpu", weights_only=True)
    net = build_model(model_config or saved["config"]["model"])
    net.load_state_dict(saved["state_dict"], strict=True)
    return saved["config"], net.eval()
