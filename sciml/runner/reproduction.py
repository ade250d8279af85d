"""Paper reproductions: the paper's numbers beside ours, with a verdict per row.

A reproduction file declares a :class:`Paper`, its :class:`Row` s (one per number the paper reports that we
compare against) and a function ``reproduce(ctx) -> dict[row_key, Measured]`` decorated with
``@reproduction(PAPER, rows=ROWS)``. Verdicts:

* ``match``: our setting is the paper's (``Measured.setting == "paper"`` or the row says ``same_setting``)
  and the value is inside ``expect``;
* ``in-band``: the setting is scaled down (stated in ``ours_setting``) and the value is inside ``expect``;
* ``off``: measured, but outside ``expect``;
* ``paper-only``: the row cannot be run here (e.g. data not available offline); the paper's number is shown;
* ``not-measured``: the run did not produce this row (e.g. skipped at smoke scale).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

from sciml.core import Registry


@dataclasses.dataclass(frozen=True)
class Paper:
    key: str          # short name used on the command line, e.g. "s4_ptd"
    title: str
    arxiv: str = ""
    venue: str = ""


@dataclasses.dataclass(frozen=True)
class Row:
    """One number of the paper and the band we accept for ours.

    Args:
        key: unique id, e.g. "tab1/listops/acc".
        source: where in the paper (e.g. "Table 1").
        paper_setting: the paper's setting for this number.
        metric: what is measured (with units / direction).
        paper: the paper's value (None when the paper gives none, e.g. a ground-truth row).
        ours_setting: our setting; say exactly what was scaled down.
        expect: (lo, hi) band for our value, or None for a paper-only row.
        same_setting: True when ``ours_setting`` is the paper's setting (then a value in band is a match).
        note: anything a reader must know (e.g. "data not available offline").
    """

    key: str
    source: str
    paper_setting: str
    metric: str
    paper: float | None
    ours_setting: str
    expect: tuple[float, float] | None = None
    same_setting: bool = False
    note: str = ""

    def __post_init__(self) -> None:
        if self.expect is not None and not self.expect[0] <= self.expect[1]:
            raise ValueError(f"row {self.key}: expect must be (lo, hi) with lo <= hi, got {self.expect}")


@dataclasses.dataclass(frozen=True)
class Measured:
    value: float
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Reproduction:
    paper: Paper
    rows: tuple[Row, ...]
    run: Callable
    summary: str


REPRODUCTIONS: Registry[Reproduction] = Registry("paper reproduction")


def reproduction(paper: Paper, *, rows: Sequence[Row], summary: str = "") -> Callable[[Callable], Callable]:
    """Register ``reproduce(ctx) -> dict[str, Measured]`` for ``paper``."""
    keys = [r.key for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{paper.key}: duplicate row keys")

    def decorate(fn: Callable) -> Callable:
        REPRODUCTIONS.register(paper.key, Reproduction(paper, tuple(rows), fn, summary or paper.title))
        return fn

    return decorate


def verdict(row: Row, measured: Measured | None) -> str:
    if row.expect is None:
        return "paper-only" if measured is None else "reported"
    if measured is None:
        return "not-measured"
    value = measured.value
    if value is None or not math.isfinite(value):
        return "off"
    inside = row.expect[0] <= value <= row.expect[1]
    if not inside:
        return "off"
    return "match" if row.same_setting else "in-band"


def compare(rows: Sequence[Row], measured: dict[str, Measured]) -> list[dict]:
    """One dict per row with the paper's value, ours, the delta and the verdict."""
    unknown = set(measured) - {r.key for r in rows}
    if unknown:
        raise ValueError(f"measured values for unknown rows: {sorted(unknown)}")
    table = []
    for row in rows:
        m = measured.get(row.key)
        delta = (m.value - row.paper) if (m is not None and row.paper is not None) else None
        table.append({"key": row.key, "source": row.source, "metric": row.metric,
                      "paper_setting": row.paper_setting, "ours_setting": row.ours_setting,
                      "paper": row.paper, "measured": None if m is None else m.value,
                      "delta": delta, "expect": row.expect, "verdict": verdict(row, m),
                      "note": "; ".join(t for t in (row.note, "" if m is None else m.note) if t)})
    return table


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and (abs(value) >= 1e4 or (0 < abs(value) < 1e-3)):
        return f"{value:.3e}"
    return f"{value:.4g}"


def comparison_markdown(paper: Paper, table: list[dict], scale: str) -> str:
    """The side-by-side table as Markdown."""
    lines = [f"# {paper.title}", "", f"arXiv {paper.arxiv or '-'} · run scale: {scale}", "",
             "| key | source | metric | paper setting | our setting | paper | ours | delta | expect | verdict | note |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        expect = "-" if r["expect"] is None else f"[{_fmt(r['expect'][0])}, {_fmt(r['expect'][1])}]"
        lines.append(f"| {r['key']} | {r['source']} | {r['metric']} | {r['paper_setting']} | {r['ours_setting']} | "
                     f"{_fmt(r['paper'])} | {_fmt(r['measured'])} | {_fmt(r['delta'])} | {expect} | "
                     f"{r['verdict']} | {r['note']} |")
    return "\n".join(lines) + "\n"
