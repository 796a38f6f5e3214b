"""`ablate explore --serve`: the explorer page, running the real models on any prompt.

GET only, and it reads only the results folder (model.pt, manifests, a grid's own
plots and README) and the page's files in this package:
  /explorer/                     the page (marked as served, so it offers a text box)
  /explorer/data/<grid>.js       the grid's data, computed from its weights on first use
  /explorer/api/view?grid=G&prompt=P[&variants=A|B]   JSON {views} or {error}, 400
  /<grid>/<file>.png|.md         the context view's headline plot and README link
Models run one request at a time: recording attention sets state on the modules.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from transformer.config import ConfigError

from .. import store
from .export import PAGE_FILES, STATIC, Grid, index, script

TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
         ".png": "image/png", ".md": "text/markdown", ".json": "application/json"}
SERVED_MARK = "<script>window.EXPLORER_SERVE = true;</script>"


class Models:
    """The grids' loaded variants, built on first use and shared by every request."""

    def __init__(self, results: Path, names: list[str]):
        self.results, self.names = Path(results), names
        self.lock = threading.Lock()
        self.grids: dict[str, Grid] = {}
        self.data: dict[str, str] = {}

    def available(self) -> list[str]:
        return [n for n in self.names
                if (store.grid_dir(self.results, n) / store.MANIFEST).is_file()]

    def grid(self, name: str) -> Grid:
        if name not in self.available():
            raise ConfigError("grid", f"unknown {name!r}; valid: {', '.join(self.available())}")
        if name not in self.grids:
            grid = Grid(self.results, name)
            if len(grid.variants) < 2:
                raise ConfigError("grid", f"{name}: fewer than 2 variants kept weights "
                                  f"(missing: {', '.join(grid.missing)})")
            self.grids[name] = grid
        return self.grids[name]

    def data_js(self, name: str) -> str:
        with self.lock:
            if name not in self.data:
                self.data[name] = script("EXPLORER_DATA", name, self.grid(name).data())
            return self.data[name]

    def index_js(self) -> str:
        return script("EXPLORER_INDEX", None, index(self.results, self.available()))

    def views(self, query: dict) -> dict:
        name = (query.get("grid") or [""])[0]
        text = (query.get("prompt") or [""])[0]
        keys = [k for k in (query.get("variants") or [""])[0].split("|") if k] or None
        with self.lock:
            grid = self.grid(name)
            known = [v.key for v in grid.variants]
            bad = [k for k in keys or () if k not in known]
            if bad:
                raise ConfigError("variants", f"unknown {bad[0]!r}; valid: {', '.join(known)}")
            started = time.perf_counter()
            views = grid.views(text, keys)
        return {"views": views, "ms": round(1000 * (time.perf_counter() - started), 1)}


def handler(models: Models) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):        # quiet: one line per error only
            if args and str(args[1] if len(args) > 1 else "").startswith(("4", "5")):
                super().log_message(format, *args)

        def send(self, status: int, body: str | bytes, ctype: str) -> None:
            data = body.encode("utf-8") if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", f"{ctype}; charset=utf-8"
                             if ctype.startswith("text") or ctype.endswith("json") else ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urlsplit(self.path)
            try:
                self.route(url.path, parse_qs(url.query))
            except ConfigError as e:
                self.send(HTTPStatus.BAD_REQUEST, json.dumps({"error": str(e)}),
                          "application/json")

        def route(self, path: str, query: dict) -> None:
            if path in ("/", "/explorer"):
                self.send_response(HTTPStatus.FOUND)
                self.send_header("Location", "/explorer/")
                self.end_headers()
                return
            page = path.removeprefix("/explorer/") if path.startswith("/explorer/") else None
            if page in ("", "index.html"):
                html = (STATIC / "index.html").read_text(encoding="utf-8")
                return self.send(200, html.replace("<!--serve-->", SERVED_MARK), "text/html")
            if page in PAGE_FILES:
                return self.send(200, (STATIC / page).read_bytes(), TYPES[Path(page).suffix])
            if page == "data/index.js":
                return self.send(200, models.index_js(), "text/javascript")
            if page and (m := re.fullmatch(r"data/([\w-]+)\.js", page)):
                return self.send(200, models.data_js(m.group(1)), "text/javascript")
            if page == "api/view":
                return self.send(200, json.dumps(models.views(query)), "application/json")
            m = re.fullmatch(r"/([\w-]+)/([\w.-]+\.(?:png|md))", path)
            if m and m.group(1) in models.available():      # a grid's plot or README
                file = store.grid_dir(models.results, m.group(1)) / m.group(2)
                if file.is_file():
                    return self.send(200, file.read_bytes(), TYPES[file.suffix])
            self.send(HTTPStatus.NOT_FOUND, json.dumps({"error": f"no such page: {path}"}),
                      "application/json")

    return Handler


def make_server(results: Path, names: list[str], host: str = "127.0.0.1",
                port: int = 8000) -> ThreadingHTTPServer:
    """A server not yet serving (call serve_forever); port 0 picks a free one."""
    return ThreadingHTTPServer((host, port), handler(Models(results, names)))
