"""`ablate explore`: write the explorer for the shipped grids (or the ones named), or
serve it with the real models behind a text box (`--serve`)."""
from __future__ import annotations

from pathlib import Path

from transformer.config import ConfigError

from .choices import GRIDS


def add_arguments(p):
    p.add_argument("grids", nargs="*", metavar="GRID",
                   help=f"grids to include (default: all of {', '.join(GRIDS)})")
    p.add_argument("--results", default="results", help="results folder (default: results)")
    p.add_argument("--out", default=None,
                   help="where the static site goes (default: RESULTS/explorer)")
    p.add_argument("--serve", action="store_true",
                   help="serve the page and run the models for any typed prompt")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind with --serve (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port for --serve (default: 8000)")


def main(args) -> int:
    names = list(dict.fromkeys(args.grids)) or list(GRIDS)
    unknown = [n for n in names if n not in GRIDS]
    if unknown:
        raise ConfigError("grid", f"no explorer for {unknown[0]!r}; valid: {', '.join(GRIDS)}")
    results = Path(args.results)
    if not results.is_dir():
        raise ConfigError("--results", f"{results} is not a folder")
    if not 0 <= args.port <= 65535:
        raise ConfigError("--port", f"must be 0..65535, got {args.port}")
    import torch
    # the models are tiny: on a CPU shared with other work a second intra-op thread made
    # one request of six variants 10-30x slower (0.4-1.3 s against 35-46 ms)
    torch.set_num_threads(1)
    if args.serve:
        return serve(results, names, args.host, args.port)
    from .export import export
    out = Path(args.out) if args.out else results / "explorer"
    for note in export(results, out, names):
        print(f"explore: {note}")
    print(f"explore: open {(out / 'index.html').resolve().as_uri()}")
    return 0


def serve(results: Path, names: list[str], host: str, port: int) -> int:
    from .serve import make_server
    try:
        server = make_server(results, names, host, port)
    except OSError as e:
        raise ConfigError("--port", f"cannot listen on {host}:{port} ({e.strerror})") from None
    print(f"explore: serving http://{host}:{server.server_address[1]}/explorer/ "
          "(Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
