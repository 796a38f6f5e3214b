"""Text corpora for the text tasks: load a source, tokenize it once, cache the ids.

Sources: the corpora shipped in ablations/data/ (`SHIPPED`: fixed files, so every
machine and Python version trains on the same bytes; ablations/data/README.md has their
origins and licences), `file:PATH` (read through `datasets`' text loader),
`hf:NAME[:CONFIG]` (a hub dataset; needs network). The last 10% of the text is the
validation split; the tokenizer (byte-level BPE) is trained on the first 90% only, and
the two splits are tokenized separately so no token straddles the boundary.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from transformer.validation import ConfigError

VAL_FRACTION = 0.1
DATA = Path(__file__).resolve().parents[1] / "data"
# name -> file under ablations/data/. python-docs is the pydoc topics text of CPython
# 3.11.7 frozen byte for byte (it differs between Python versions: 459k-511k characters
# from 3.10 to 3.13), which produced every committed text result; shakespeare is Tiny
# Shakespeare, the second corpus replications run on.
SHIPPED = {"python-docs": "python-docs.txt", "shakespeare": "tinyshakespeare.txt"}
CACHE_FORMAT = 1        # bump when the cached layout or tokenization changes


@dataclass
class Corpus:
    tokens: torch.Tensor      # int32, train ids then val ids
    n_train: int
    vocab_size: int
    decoder: object           # chars (str) for char, a tokenizers.Tokenizer for bpe

    @property
    def n_symbols(self) -> int:
        """Ids actually in use: a small text can stop BPE short of the requested size."""
        if isinstance(self.decoder, str):
            return len(self.decoder)
        return self.decoder.get_vocab_size()

    def decode(self, ids) -> str:
        ids = [int(i) for i in ids]
        if isinstance(self.decoder, str):
            return "".join(self.decoder[i] for i in ids if i < len(self.decoder))
        return self.decoder.decode(ids)


_LOADED: dict[str, Corpus] = {}


def load_corpus(source: str, tokenizer: str, vocab_size: int, cache_dir=None) -> Corpus:
    """The tokenized corpus, built once per process and once per cache_dir."""
    settings = {"format": CACHE_FORMAT, "source": source, "tokenizer": tokenizer,
                "fingerprint": fingerprint(source)}
    if tokenizer == "bpe":
        settings["vocab_size"] = vocab_size
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(cache_dir) / "text" / key if cache_dir is not None else None
    memo = f"{key}:{folder}"
    if memo not in _LOADED:
        corpus = _read_cache(folder) if folder is not None else None
        if corpus is None:
            corpus = _build(read_text(source, cache_dir), tokenizer, vocab_size)
            if folder is not None:
                _write_cache(folder, corpus, settings)
        _LOADED[memo] = corpus
    return _LOADED[memo]


# -- sources --------------------------------------------------------------------------

def fingerprint(source: str) -> str:
    """Changes when the text behind a source changes (so a stale cache is never used)."""
    if source in SHIPPED:
        return _file_hash(str(DATA / SHIPPED[source]), 0, 0)
    if source.startswith("file:"):
        path = _file_path(source)
        stat = path.stat()
        return _file_hash(str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    return source   # a hub dataset: its name and config are all we know offline


def read_text(source: str, cache_dir=None) -> str:
    if source in SHIPPED:
        return _shipped(source)
    hf_cache = str(Path(cache_dir) / "hf") if cache_dir is not None else None
    if source.startswith("file:"):
        datasets = _import_datasets(offline=True)
        ds = datasets.load_dataset("text", data_files=str(_file_path(source)), split="train",
                                   keep_linebreaks=True, cache_dir=hf_cache)
        return "".join(ds["text"])
    if source.startswith("hf:"):
        return _read_hub(source, hf_cache)
    raise ConfigError("task.source", f"unknown source {source!r}; valid: "
                      f"{', '.join(SHIPPED)}, file:PATH, hf:NAME[:CONFIG]")


@functools.lru_cache(maxsize=2)
def _shipped(source: str) -> str:
    with open(DATA / SHIPPED[source], encoding="utf-8", newline="") as f:   # bytes as stored
        return f.read()


def _file_path(source: str) -> Path:
    path = Path(source[len("file:"):]).expanduser()
    if not path.is_file():
        raise ConfigError("task.source", f"no such file: {str(path)!r}")
    return path


@functools.lru_cache(maxsize=8)
def _file_hash(path: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def _import_datasets(offline: bool):
    # datasets reads these once, at import; without them it tries DNS even for local files.
    if offline:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import datasets
    return datasets


def _read_hub(source: str, hf_cache) -> str:
    name, _, config = source[len("hf:"):].partition(":")
    if not name:
        raise ConfigError("task.source", "expected hf:NAME[:CONFIG], "
                          "e.g. hf:wikitext:wikitext-2-raw-v1")
    datasets = _import_datasets(offline=False)
    try:
        ds = datasets.load_dataset(name, config or None, split="train", cache_dir=hf_cache)
    except Exception as e:  # offline, unknown name, bad config: all surface as one line
        offline = [v for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE") if os.environ.get(v) == "1"]
        why = f" ({' and '.join(offline)} set)" if offline else ""
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError("task.source", f"cannot load hub dataset {source!r}{why}: {first}; "
                          "hf: sources need network access, offline use python-docs or "
                          "file:PATH") from None
    columns = [c for c, f in ds.features.items()
               if getattr(f, "dtype", None) in ("string", "large_string")]
    if not columns:
        raise ConfigError("task.source", f"hub dataset {source!r} has no text column")
    column = "text" if "text" in columns else columns[0]
    return "".join(r if r.endswith("\n") else r + "\n" for r in ds[column])


# -- tokenization ---------------------------------------------------------------------

def _build(text: str, tokenizer: str, vocab_size: int) -> Corpus:
    cut = int(len(text) * (1 - VAL_FRACTION))
    train, val = text[:cut], text[cut:]
    if tokenizer == "char":
        # The alphabet comes from the whole text: knowing which characters exist is no
        # leak, and it spares the val split an unknown-character token.
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        alphabet = np.unique(codes)
        ids = np.searchsorted(alphabet, codes).astype(np.int32)
        chars = "".join(map(chr, alphabet.tolist()))
        return Corpus(torch.from_numpy(ids), cut, len(chars), chars)
    tok = train_bpe(train, vocab_size)
    parts = [_encode(tok, train), _encode(tok, val)]
    ids = np.concatenate(parts)
    return Corpus(torch.from_numpy(ids), len(parts[0]), vocab_size, tok)


def train_bpe(text: str, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text.splitlines(keepends=True), trainer)
    return tok


def _encode(tok, text: str) -> np.ndarray:
    encodings = tok.encode_batch(text.splitlines(keepends=True))
    flat = itertools.chain.from_iterable(e.ids for e in encodings)
    return np.fromiter(flat, dtype=np.int32)


# -- cache ------------------------------------------------------------------------------

def _read_cache(folder: Path) -> Corpus | None:
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    ids = torch.from_numpy(np.load(folder / "tokens.npy"))
    if meta["tokenizer"] == "char":
        decoder = json.loads((folder / "vocab.json").read_text())
    else:
        from tokenizers import Tokenizer
        decoder = Tokenizer.from_file(str(folder / "tokenizer.json"))
    return Corpus(ids, meta["n_train"], meta["vocab_size"], decoder)


def _write_cache(folder: Path, corpus: Corpus, settings: dict) -> None:
    # Parallel runs may build the same cache: every file lands by os.replace, and
    # meta.json, written last, is what marks the folder complete.
    folder.mkdir(parents=True, exist_ok=True)
    tmp = f".tmp{os.getpid()}"

    def put(name: str, write) -> None:
        path = folder / (name + tmp)
        write(path)
        os.replace(path, folder / name)

    def save_ids(path: Path) -> None:
        with open(path, "wb") as f:       # np.save(path) would append another .npy
            np.save(f, corpus.tokens.numpy())

    put("tokens.npy", save_ids)
    if isinstance(corpus.decoder, str):
        put("vocab.json", lambda p: p.write_text(json.dumps(corpus.decoder)))
    else:
        put("tokenizer.json", lambda p: corpus.decoder.save(str(p)))
    meta = {**settings, "n_train": corpus.n_train, "vocab_size": corpus.vocab_size,
            "n_tokens": len(corpus.tokens)}
    put("meta.json", lambda p: p.write_text(json.dumps(meta, indent=1)))
