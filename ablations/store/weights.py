"""model.pt: a finished run's final weights and resolved config, for figures and post-hoc
evaluations drawn from the trained model (torch is imported only here, when asked)."""
from __future__ import annotations

import os
from pathlib import Path

from . import integrity
from .files import Unreadable, read_json
from .layout import MODEL, RESULT


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
    FileNotFoundError when the run kept no weights, Unreadable when the file does not
    match the size and hash its result.json records, or torch cannot read it."""
    import io

    import torch

    from transformer import build_model
    path = Path(run_path) / MODEL
    data = path.read_bytes()
    try:
        problem = integrity.model_problem(run_path, read_json(Path(run_path) / RESULT), data)
    except (FileNotFoundError, Unreadable):      # no result to check against
        problem = None
    if problem:
        raise Unreadable(path, problem.split(": ", 1)[1])
    try:
        saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:                       # truncated zip, unpickling error, ...
        raise Unreadable(path, f"unreadable ({type(e).__name__}); "
                               f"{integrity.retrain_hint(run_path)}") from None
    net = build_model(model_config or saved["config"]["model"])
    net.load_state_dict(saved["state_dict"], strict=True)
    return saved["config"], net.eval()
