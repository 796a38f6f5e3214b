"""Numbers -> compact base64 arrays for the page (decoded by static/explorer.js, `unpack`).

JSON decimals would make one grid's attention maps tens of MB; packed they are a few
hundred kB. Three codes, each chosen for what it carries:
  f32  exact float32 (logits: the page's sampling must equal the project's to 1e-6)
  q16  int16 times one scale per array (attention logits, encodings: 1/32767 of the
       largest magnitude, far below what a colour can show)
  u16  uint16 / 65535 (probabilities in [0, 1], to 1.5e-5)
Little-endian throughout, as every browser's typed arrays are on the machines they run on.
"""
from __future__ import annotations

import base64

import numpy as np


def _b64(a: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype=dtype).tobytes()).decode("ascii")


def f32(x) -> dict:
    a = np.asarray(x, dtype=np.float32)
    return {"code": "f32", "shape": list(a.shape), "data": _b64(a, "<f4")}


def q16(x) -> dict:
    a = np.asarray(x, dtype=np.float64)
    if not np.isfinite(a).all():
        raise ValueError("q16 packs finite numbers only")
    top = float(np.abs(a).max()) if a.size else 0.0
    scale = top / 32767 if top > 0 else 1.0
    return {"code": "q16", "shape": list(a.shape), "scale": scale,
            "data": _b64(np.rint(a / scale), "<i2")}


def u16(x) -> dict:
    a = np.asarray(x, dtype=np.float64)
    if a.size and (a.min() < 0 or a.max() > 1):
        raise ValueError("u16 packs numbers in [0, 1] only")
    return {"code": "u16", "shape": list(a.shape), "data": _b64(np.rint(a * 65535), "<u2")}


def unpack(packed: dict) -> np.ndarray:
    """The inverse, as the page computes it (tests compare against the model with it)."""
    raw = base64.b64decode(packed["data"])
    code = packed["code"]
    if code == "f32":
        a = np.frombuffer(raw, "<f4").astype(np.float64)
    elif code == "q16":
        a = np.frombuffer(raw, "<i2") * packed["scale"]
    elif code == "u16":
        a = np.frombuffer(raw, "<u2") / 65535
    else:
        raise ValueError(f"unknown code {code!r}; valid: f32, q16, u16")
    return a.reshape(packed["shape"])
