"""The README's front-page table says what the committed results say: each question's
verdict counts, sanity checks and replication tallies are those of its grid's
verdicts.json. The table is prose around numbers, written by hand; this keeps the
numbers from drifting when a grid is regenerated."""
from __future__ import annotations

import collections
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORDS = {"supported": "supported", "not supported": "not_supported",
         "inconclusive": "inconclusive"}


def rows() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in text.splitlines() if re.match(r"\| \d+ \| \*\*", line)]


def grid_of(row: list[str]) -> str:
    return re.search(r"results/(\w+)/README\.md", row[1]).group(1)


def said_counts(cell: str) -> dict[str, int]:
    m = re.fullmatch(r"(\d+) of \1 supported", cell)
    if m:
        return {"supported": int(m[1])}
    found = re.findall(r"(\d+) (not supported|supported|inconclusive)", cell)
    assert found, f"cannot read verdict counts from {cell!r}"
    return {WORDS[w]: int(n) for n, w in found}


def tally(cell: str, kind: str) -> tuple[int, int] | None:
    """(held, decided) from 'held-out seeds: 3 of 4'; None for 'not run yet' or absent."""
    name = {"seeds": "held-out seeds", "corpus": "second corpus"}[kind]
    m = re.search(rf"{name}: (\d+) of (\d+)", cell)
    return (int(m[1]), int(m[2])) if m else None


def test_the_front_page_lists_every_question_once():
    grids = [grid_of(r) for r in rows()]
    assert len(grids) >= 10 and len(set(grids)) == len(grids)


@pytest.mark.parametrize("row", rows(), ids=grid_of)
def test_front_page_numbers_are_the_committed_verdicts(row):
    judged = json.loads((REPO / "results" / grid_of(row) / "verdicts.json").read_text())
    family = [v for v in judged if not v.get("sanity")]
    counts = dict(collections.Counter(v["verdict"] for v in family))
    assert said_counts(row[3]) == counts, (row[3], counts)
    assert int(row[4]) == len(judged) - len(family)                 # sanity checks
    decided = [v for v in family if v["verdict"] in ("supported", "not_supported")]
    for kind in ("seeds", "corpus"):
        rerun = [v for v in decided if (v.get("replicated") or {}).get(kind)]
        held = sum(v["replicated"][kind] == v["verdict"] for v in rerun)
        said = tally(row[5], kind)
        assert said == ((held, len(rerun)) if rerun else None), (kind, row[5])
