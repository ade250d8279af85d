"""Paper reproductions: the paper's numbers beside ours, with a verdict per row.

A reproduction file declares a :class:`Paper`, its :class:`Row` s (one per number the paper reports that we
compare against) and a function ``reproduce(ctx) -> dict[row_key, Measured]`` decorated with
``@reproduction(PAPER, rows=ROWS)``. Verdicts:

* ``match``: our setting is the paper's (``Measured.setting == "paper"`` or the row says ``same_setting``)
  and the value is inside ``expect``;
* ``in-band``: the setting is scaled down (stated in ``ours_setting``) and the value is inside ``expect``;
* ``off``: measured, but outside ``expect``;
* ``paper-only``: the row cannot be run here (e.g. data not available offline); the paper's number is shown;
* ``smoke``: a smoke-scale run whose value is inside ``expect`` (a smoke run never says ``match`` or ``in-band``);
* ``reported``: a measured value for a row without a band (context, not a claim);
* ``not-measured``: the run did not produce this row (e.g. skipped at smoke scale).

A reproduction is a configured run: its :class:`ReproductionConfig` subclass holds the scale and every size,
seed count and budget; ``preset(scale)`` gives the defaults per scale, ``--set key=value`` changes them, and
result.json records the resolved config so ``sciml rerun`` can repeat the run exactly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

from sciml.core import Config, Registry
from sciml.runner.io import as_metric_value

SCALES = ("smoke", "default", "full")
VERDICTS = ("match", "in-band", "smoke", "off", "reported", "paper-only", "not-measured")


@dataclasses.dataclass(frozen=True)
class ReproductionConfig(Config):
    """Base config of a reproduction. Subclasses add their sizes, seeds and budgets as fields and override
    :meth:`preset` to give per-scale defaults (``--set`` overrides are applied on top of the preset)."""

    scale: str = "default"

    def validate(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")

    @classmethod
    def preset(cls, scale: str) -> "ReproductionConfig":
        """The defaults for ``scale`` ("smoke", "default" or "full")."""
        return cls(scale=scale)


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
    """A measured value. ``paper_setting=False`` says this run did not use the row's (paper) setting, e.g. fewer
    seeds or a smaller model than the row states: the verdict is then at best ``in-band``."""

    value: float
    note: str = ""
    paper_setting: bool | None = None


@dataclasses.dataclass(frozen=True)
class Reproduction:
    paper: Paper
    rows: tuple[Row, ...]
    run: Callable
    summary: str
    config: type[ReproductionConfig] = ReproductionConfig
    takes_config: bool = False   # run(cfg, ctx) when True; the older run(ctx) otherwise


REPRODUCTIONS: Registry[Reproduction] = Registry("paper reproduction")


def reproduction(paper: Paper, *, rows: Sequence[Row], summary: str = "",
                 config: type[ReproductionConfig] | None = None) -> Callable[[Callable], Callable]:
    """Register ``reproduce(cfg, ctx) -> dict[str, Measured]`` for ``paper`` with its config class.

    Without ``config`` the older form ``reproduce(ctx)`` is registered (the run still records its scale).
    """
    keys = [r.key for r in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{paper.key}: duplicate row keys")
    if config is not None and not (isinstance(config, type) and issubclass(config, ReproductionConfig)):
        raise ValueError(f"config of {paper.key!r} must subclass ReproductionConfig")

    def decorate(fn: Callable) -> Callable:
        REPRODUCTIONS.register(paper.key, Reproduction(paper, tuple(rows), fn, summary or paper.title,
                                                       config or ReproductionConfig, config is not None))
        return fn

    return decorate


def verdict(row: Row, measured: Measured | None, scale: str = "default") -> str:
    """The row's verdict for a value measured at ``scale`` (see the module docstring)."""
    if row.expect is None:
        return "paper-only" if measured is None else "reported"
    if measured is None:
        return "not-measured"
    value = measured.value
    if value is None or not math.isfinite(float(value)):
        return "off"
    if not row.expect[0] <= value <= row.expect[1]:
        return "off"
    if scale == "smoke":
        return "smoke"
    return "match" if row.same_setting and measured.paper_setting is not False else "in-band"


def compare(rows: Sequence[Row], measured: dict[str, Measured], scale: str = "default") -> list[dict]:
    """One dict per row with the paper's value, ours, the delta and the verdict."""
    unknown = set(measured) - {r.key for r in rows}
    if unknown:
        raise ValueError(f"measured values for unknown rows: {sorted(unknown)}")
    table = []
    for row in rows:
        m = measured.get(row.key)
        if m is not None and not isinstance(m, Measured):
            raise TypeError(f"row {row.key}: expected a Measured, got {type(m).__name__}")
        if m is not None:
            m = dataclasses.replace(m, value=as_metric_value(m.value, f"row {row.key}"))
        delta = (m.value - row.paper) if (m is not None and m.value is not None and row.paper is not None) else None
        table.append({"key": row.key, "source": row.source, "metric": row.metric,
                      "paper_setting": row.paper_setting, "ours_setting": row.ours_setting,
                      "paper": row.paper, "measured": None if m is None else m.value,
                      "delta": delta, "expect": row.expect, "verdict": verdict(row, m, scale),
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
        cells = [r["key"], r["source"], r["metric"], r["paper_setting"], r["ours_setting"], _fmt(r["paper"]),
                 _fmt(r["measured"]), _fmt(r["delta"]), expect, r["verdict"], r["note"]]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
