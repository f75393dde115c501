"""Figures of the report (matplotlib, Agg backend): the routing chain, trends, wijken and odds ratios.

Every figure shows the confidence interval of each estimate; suppressed
estimates are never drawn, only marked "niet gepubliceerd". Files are written
with fixed metadata so a rerun on the same numbers gives the same bytes.

A figure is planned first (`chain_plan`, `trend_plan`, `area_plan`, `forest_plan`): a
`FigurePlan` holds, as plain data, exactly the rows, labels and settings the
drawing reads, and nothing else. `write_figures` draws each plan, or copies it
from the figure cache when a plan with the same hash was drawn before. The hash
covers the plan, the output format and the drawing code (matplotlib's version
and the source of this module and of `formatting.py`, whose number format the
axes use), so a changed number, label or style redraws exactly the figures it
touches. Cached files are aggregates only (what the report shows).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import textwrap
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_mixed import MixedModeRenderer
from matplotlib.backends.backend_svg import RendererSVG
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FuncFormatter, NullFormatter

from survey_pipeline import gx_process
from survey_pipeline.contracts import SAE_SOURCE_MODEL as MODEL_SOURCE
from survey_pipeline.spec import ALL_RESIDENTS, Indicator, QuestionnaireSpec
from survey_pipeline.stages.report import formatting
from survey_pipeline.stages.report.formatting import dutch_target, format_percent
from survey_pipeline.stages.report.tables import TOTAL, ChainStep, label_with_base
from survey_pipeline.targets import parse_target

log = logging.getLogger(__name__)

DPI = 150
POINTS_PER_INCH = 72
PAD = 0.1  # inches of margin around the tight bounding box
SVG_ROOT_SIZE = re.compile(r'width="[0-9.]+pt" height="[0-9.]+pt" viewBox="0 0 [0-9.]+ [0-9.]+"')
# Applied only while a figure is built and saved (no pyplot, no global state for other code).
STYLE = {
    "svg.hashsalt": "survey-pipeline",
    # SVG text as <text> (searchable, small, fast); readers without DejaVu Sans fall back to a sans-serif
    "svg.fonttype": "none",
    "figure.dpi": DPI,  # lay out at the PNG resolution, so the tight box fits the saved text
    "font.family": ["DejaVu Sans", "sans-serif"],
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
HIDDEN = "niet gepubliceerd"
HIDDEN_REASON = f"{HIDDEN}: te weinig waarnemingen of te onzeker"
MODEL_LABEL = "modelschatting"
MODEL_LEGEND = f"{MODEL_LABEL} (95%-BI uit de MSE)"
MODEL_NOTE = (
    f"(m) {MODEL_LABEL}: geschat met een model uit de gebiedskenmerken en de andere gebieden, "
    "niet design-zuiver; zie de onderzoeksverantwoording"
)
COLOURS = ("#00689e", "#e5720b", "#5a9b3c", "#8e5ea2", "#c0392b")
PERCENT = FuncFormatter(lambda y, _: format_percent(y, 0))
# Titles at the top of their axes, given explicitly: matplotlib then skips moving a title clear of top
# tick labels or an offset text, which these figures never have (measuring every tick label twice per figure).
TITLE_Y = 1.0
FOREST_TICKS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)  # odds ratios, log axis
# Fewer figures to draw are drawn in the main process: a pool would cost about as much as it saves.
MIN_PARALLEL_FIGURES = 4
FIGURES = "figures"  # the report's folder of figure files, as the pages name them


@dataclass(frozen=True)
class Figure:
    """A written figure: `stem` is the file name without extension (under `figures/`)."""

    stem: str
    title: str
    description: str
    files: tuple[str, ...]


@dataclass(frozen=True)
class FigurePlan:
    """One figure as plain data: `kind` names the drawing, `data` is all it reads (JSON-ready)."""

    kind: str
    stem: str
    title: str
    description: str
    data: Mapping[str, Any]


def numeric_target(target: str) -> float | None:
    """The level of a target such as ">80%", ">=85%", "20%" or "afname <20%" (the spec's grammar,
    `survey_pipeline.targets`); None for "toename", "kengetal" etc."""
    level = parse_target(target).level
    return level.value if level is not None else None


def _level_text(indicators: pd.DataFrame) -> str:
    """The confidence level of the intervals in the table, as printed ("95%")."""
    return format_percent(float(indicators["level"].iloc[0]))


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))


def _totals(indicators: pd.DataFrame) -> pd.DataFrame:
    return indicators[indicators["breakdown"] == TOTAL].set_index(["indicator_id", "wave"])


def _estimate(row: Any) -> dict[str, Any]:
    """The numbers a figure draws of one table row; a suppressed row carries none."""
    if bool(row["suppressed"]):
        return {"suppressed": True}
    return {"suppressed": False, **{k: float(row[k]) for k in ("estimate", "ci_lower", "ci_upper")}}


def _total_row(totals: pd.DataFrame, indicator_id: str, wave: int) -> dict[str, Any] | None:
    return _estimate(totals.loc[(indicator_id, wave)]) if (indicator_id, wave) in totals.index else None


def _short_labels(steps: Sequence[Indicator]) -> list[str]:
    """Labels without their common opening words ("% Bewoners (18 jaar e.o.) dat aangeeft ...")."""
    words = [s.label.split() for s in steps]
    common = 0
    while all(len(w) > common + 1 for w in words) and len({w[common] for w in words}) == 1:
        common += 1
    return [" ".join(w[common:]) for w in words]


# ---------------------------------------------------------------------------
# Plans: what each figure shows


def chain_plan(
    indicators: pd.DataFrame, spec: QuestionnaireSpec, steps: Sequence[ChainStep], waves: Sequence[int]
) -> FigurePlan:
    """Per wave: each step of the chain as a share of the previous step, and as a share of all residents."""
    totals = _totals(indicators)
    short = _short_labels([s.conditional for s in steps])
    panels = []
    for of_residents, title in (
        (False, "Per stap: als deel van de vorige stap"),
        (True, f"Als deel van {spec.groups[ALL_RESIDENTS].label}"),
    ):
        series = []
        for k, step in enumerate(steps):
            ind = step.of_residents if of_residents else step.conditional
            if ind is None:
                continue
            label = short[k] if of_residents else f"{short[k]} ({spec.base_text(ind.base)})"
            series.append(
                {"step": k, "label": _wrap(label, 60), "rows": [_total_row(totals, ind.id, w) for w in waves]}
            )
        panels.append({"title": title, "series": series})
    data = {
        "waves": [int(w) for w in waves],
        "steps": len(steps),
        "panels": panels,
        "title": f"Van gehoord naar contact naar geholpen, per meting (met {_level_text(indicators)}-"
        "betrouwbaarheidsinterval)",
    }
    description = "De keten " + " \u2192 ".join(short) + " per meting, met betrouwbaarheidsintervallen."
    return FigurePlan("chain", "keten", "De keten per meting", description, data)


def trend_plan(
    indicators: pd.DataFrame, spec: QuestionnaireSpec, ind: Indicator, waves: Sequence[int], target_years: Sequence[int]
) -> FigurePlan:
    """An indicator over the measured waves with its CI, and its targets per year."""
    totals = _totals(indicators)
    measured = [int(w) for w in waves if (ind.id, w) in totals.index]
    years = sorted(
        {*waves, *target_years, *(y for y in ind.targets if min(waves) <= y <= max([*waves, *target_years]))}
    )
    level = _level_text(indicators)
    targets = [
        [int(year), dutch_target(ind.targets[year]), numeric_target(ind.targets[year])]
        for year in years
        if ind.targets.get(year)
    ]
    data = {
        "measured": measured,
        "rows": [_total_row(totals, ind.id, w) for w in measured],
        "years": [int(y) for y in years],
        "targets": targets,
        "legend": f"behaald ({level}-BI)",
        "title": _wrap(ind.label, 80) + "\n" + _wrap(spec.base_text(ind.base), 90),
    }
    return FigurePlan(
        "trend",
        f"trend_{ind.id}",
        label_with_base(spec, ind),
        f"Ontwikkeling per meting met {level}-betrouwbaarheidsinterval en streefwaarden: {label_with_base(spec, ind)}",
        data,
    )


def area_plan(
    indicators: pd.DataFrame, spec: QuestionnaireSpec, ind: Indicator, wave: int, small_area: pd.DataFrame | None = None
) -> FigurePlan | None:
    """The areas (spec `area_variable`, e.g. wijken) of one wave side by side with CIs and the municipal
    total; None if the spec has no area variable or no area is published.

    With the small-area table (`outputs/estimate/sae.parquet`, contract `EstimateSae`), an area whose
    direct estimate is suppressed shows its published model-based estimate instead, marked (m)
    "modelschatting" (another marker and colour, interval from the MSE).
    """
    area = spec.area_variable
    if area is None:
        return None
    per_area = spec.breakdown_text(area)
    rows = indicators[(indicators["indicator_id"] == ind.id) & (indicators["wave"] == wave)]
    areas = rows[rows["breakdown"] == area].assign(model=False)
    total = rows[rows["breakdown"] == TOTAL]
    if small_area is not None and len(small_area):
        model = small_area[
            (small_area["indicator_id"] == ind.id)
            & (small_area["wave"] == wave)
            & (small_area["published_source"] == MODEL_SOURCE)
        ].set_index("area")
        codes = areas["breakdown_code"].astype("int64")
        chosen = codes.isin(model.index).to_numpy() & areas["suppressed"].to_numpy()
        for column, source in (
            ("estimate", "published_estimate"),
            ("ci_lower", "published_ci_lower"),
            ("ci_upper", "published_ci_upper"),
        ):
            areas.loc[chosen, column] = model[source].reindex(codes[chosen]).to_numpy()
        areas.loc[chosen, "suppressed"] = False
        areas.loc[chosen, "model"] = True
    if not (~areas["suppressed"]).any():
        return None
    shown = areas[~areas["suppressed"]].sort_values("estimate")
    hidden = areas[areas["suppressed"]].sort_values("breakdown_label", ascending=False)
    level = _level_text(indicators)
    data = {
        "hidden": [str(label) for label in hidden["breakdown_label"]],
        "shown": [
            {"label": str(r["breakdown_label"]), **_estimate(r), **({"model": True} if r["model"] else {})}
            for _, r in shown.iterrows()
        ],
        "total": _estimate(total.iloc[0]) if len(total) else None,
        "legend": f"{spec.background[area].label.lower()} ({level}-BI)",
        "title": _wrap(ind.label, 80) + "\n" + _wrap(f"{spec.base_text(ind.base)}, {per_area}, {wave}", 90),
    }
    described = " en modelschattingen (m) waar het directe cijfer te onzeker is" if shown["model"].any() else ""
    return FigurePlan(
        "area",
        f"{area}_{ind.id}",
        f"{label_with_base(spec, ind)} {per_area} ({wave})",
        f"Vergelijking {per_area} in {wave} met {level}-betrouwbaarheidsintervallen{described}: "
        f"{label_with_base(spec, ind)}",
        data,
    )


def forest_plan(
    odds: pd.DataFrame, spec: QuestionnaireSpec, analysis_id: str, wave: int, level: float
) -> FigurePlan | None:
    """The odds ratios of a logit analysis (`contracts.AnalysisOddsRatios`) in one wave with their
    intervals (at `level`, the estimate stage's), a row per predictor level, the reference levels at 1;
    None when no term is published."""
    rows = odds[(odds["analysis_id"] == analysis_id) & (odds["wave"] == wave) & (odds["predictor"] != "")]
    if rows.empty or not (~rows["suppressed"] & ~rows["reference"]).any():
        return None
    shown = []
    for _, row in rows.iterrows():
        predictor = str(row["predictor"])
        name = spec.background[predictor].label if predictor in spec.background else predictor
        entry: dict[str, Any] = {"label": f"{name}: {row['level_label']}", "reference": bool(row["reference"])}
        if bool(row["suppressed"]):
            entry["suppressed"] = True
        elif not row["reference"]:
            entry.update(suppressed=False, **{k: float(row[k]) for k in ("odds_ratio", "or_lower", "or_upper")})
        shown.append(entry)
    title = str(rows["title"].iloc[0])
    shown_level = format_percent(level)
    data = {
        "rows": shown,
        "title": _wrap(f"{title} ({wave})", 80)
        + "\n"
        + _wrap(
            f"odds ratio met {shown_level}-betrouwbaarheidsinterval, "
            "logaritmische schaal; 1 = gelijk aan de referentiecategorie",
            90,
        ),
    }
    return FigurePlan(
        "forest",
        f"odds_{analysis_id}",
        f"{title} ({wave})",
        f"Odds ratios met {shown_level}-betrouwbaarheidsintervallen per kenmerk ten opzichte van de referentiecategorie: "
        f"{title} ({wave})",
        data,
    )


# ---------------------------------------------------------------------------
# Drawing: from a plan's data only


def _new_figure(figsize: tuple[float, float], ncols: int = 1, **subplot_kw):
    """A bare Figure on an Agg canvas (object-oriented API: nothing is registered with pyplot)."""
    fig = MplFigure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, **subplot_kw)


def _error_bars(ax, x, rows: list, colour: str, width: float | None = None, label: str | None = None) -> None:
    """Bars (width given) or points with CI whiskers; suppressed rows get a "-" marker only."""
    shown = [(xi, r) for xi, r in zip(x, rows) if r is not None and not r["suppressed"]]
    hidden = [xi for xi, r in zip(x, rows) if r is not None and r["suppressed"]]
    if shown:
        xs = np.array([xi for xi, _ in shown])
        est = np.array([r["estimate"] for _, r in shown])
        err = np.vstack(
            [est - np.array([r["ci_lower"] for _, r in shown]), np.array([r["ci_upper"] for _, r in shown]) - est]
        )
        if width is not None:
            ax.bar(xs, est, width=width, color=colour, label=label, alpha=0.85)
            ax.errorbar(xs, est, yerr=err, fmt="none", ecolor="#222222", capsize=3, linewidth=1)
            for xi, e, top in zip(xs, est, est + err[1]):
                ax.text(xi, top + 0.01, format_percent(e), ha="center", va="bottom", fontsize=7)
        else:
            ax.errorbar(xs, est, yerr=err, fmt="o-", color=colour, capsize=4, label=label, zorder=3)
    for xi in hidden:
        ax.text(xi, 0.02, "-", ha="center", va="bottom", fontsize=10)


def _draw_chain(data: Mapping[str, Any]) -> MplFigure:
    fig, axes = _new_figure((11, 4.8), 2, sharey=True)
    steps, waves = data["steps"], data["waves"]
    width = 0.8 / steps
    x = np.arange(len(waves), dtype=float)
    for ax, panel in zip(axes, data["panels"]):
        for series in panel["series"]:
            k = series["step"]
            _error_bars(
                ax,
                x + (k - (steps - 1) / 2) * width,
                series["rows"],
                COLOURS[k % len(COLOURS)],
                width=width * 0.95,
                label=series["label"],
            )
        ax.set_xticks(x, [str(w) for w in waves])
        ax.set_ylim(0, 1.08)
        ax.yaxis.set_major_formatter(PERCENT)
        ax.set_title(panel["title"], fontsize=10, y=TITLE_Y)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(loc="upper center", ncol=1, frameon=False, bbox_to_anchor=(0.5, -0.08), fontsize=8)
    fig.suptitle(data["title"], fontsize=11)
    return fig


def _draw_trend(data: Mapping[str, Any]) -> MplFigure:
    fig, ax = _new_figure((6.4, 3.6))
    _error_bars(ax, data["measured"], data["rows"], COLOURS[0], label=data["legend"])
    first = True
    for year, label, value in data["targets"]:
        if value is not None:
            ax.plot(
                [year - 0.3, year + 0.3],
                [value, value],
                color=COLOURS[1],
                linewidth=2.2,
                zorder=1,
                label="streefwaarde" if first else None,
            )
            if len(label) <= 5:  # short labels beside the bar, clear of the estimate's CI
                ax.text(year + 0.32, value, label, ha="left", va="center", fontsize=6.5, color=COLOURS[1])
            else:
                ax.text(year, value + 0.03, label, ha="center", va="bottom", fontsize=6.5, color=COLOURS[1])
            first = False
        else:
            ax.text(year, 0.04, label, ha="center", va="bottom", fontsize=7, color="#666666", rotation=90)
    years = data["years"]
    ax.set_xticks(years, [str(y) for y in years])
    ax.set_xlim(min(years) - 0.6, max(years) + 0.6)
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PERCENT)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(data["title"], fontsize=8.5, loc="left", y=TITLE_Y)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=7, frameon=False)
    return fig


def _draw_area(data: Mapping[str, Any]) -> MplFigure:
    hidden, shown = data["hidden"], data["shown"]
    labels = [*hidden, *(r["label"] for r in shown)]
    fig, ax = _new_figure((7.2, 0.22 * len(labels) + 1.6))
    y_shown = np.arange(len(hidden), len(labels))
    for is_model, marker, colour, label in (
        (False, "o", COLOURS[0], data["legend"]),
        (True, "D", COLOURS[3], MODEL_LEGEND),
    ):
        part = [r for r in shown if r.get("model", False) == is_model]
        if part:
            y = y_shown[[r.get("model", False) == is_model for r in shown]]
            est = np.array([r["estimate"] for r in part])
            err = np.vstack(
                [est - np.array([r["ci_lower"] for r in part]), np.array([r["ci_upper"] for r in part]) - est]
            )
            ax.errorbar(est, y, xerr=err, fmt=marker, color=colour, capsize=2, markersize=4, label=label)
    for y in range(len(hidden)):
        ax.text(0.01, y, HIDDEN, va="center", fontsize=7, color="#666666")
    total = data["total"]
    if total is not None and not total["suppressed"]:
        ax.axvspan(total["ci_lower"], total["ci_upper"], color=COLOURS[1], alpha=0.15, linewidth=0)
        ax.axvline(
            total["estimate"], color=COLOURS[1], linewidth=1.5, label=f"gemeente: {format_percent(total['estimate'])}"
        )
    ticks = [*hidden, *(f"{r['label']} (m)" if r.get("model") else r["label"] for r in shown)]
    ax.set_yticks(np.arange(len(labels)), ticks, fontsize=7.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.xaxis.set_major_formatter(PERCENT)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(data["title"], fontsize=8.5, loc="left", y=TITLE_Y)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), borderaxespad=2.8, ncol=2, fontsize=7, frameon=False)
    notes = [HIDDEN_REASON] if hidden else []
    if any(r.get("model") for r in shown):
        notes.append(MODEL_NOTE)
    if notes:  # once, under the legend, rather than on every row
        ax.annotate(
            "\n".join(notes),
            xy=(0.5, 0.0),
            xycoords="axes fraction",
            xytext=(0, -40),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=7,
            color="#666666",
        )
    return fig


def _draw_forest(data: Mapping[str, Any]) -> MplFigure:
    rows = data["rows"]
    fig, ax = _new_figure((6.4, 0.28 * len(rows) + 1.4))
    y = np.arange(len(rows))[::-1]
    shown = [(yi, r) for yi, r in zip(y, rows) if not r.get("suppressed") and not r["reference"]]
    if shown:
        ys = np.array([yi for yi, _ in shown], dtype=float)
        est = np.array([r["odds_ratio"] for _, r in shown])
        err = np.vstack(
            [est - np.array([r["or_lower"] for _, r in shown]), np.array([r["or_upper"] for _, r in shown]) - est]
        )
        ax.errorbar(est, ys, xerr=err, fmt="o", color=COLOURS[0], capsize=2, markersize=4)
    for yi, r in zip(y, rows):
        if r["reference"]:
            ax.plot([1.0], [yi], marker="s", color="#666666", markersize=4)
        elif r.get("suppressed"):
            ax.text(1.0, yi, f" {HIDDEN}", va="center", fontsize=7, color="#666666")
    ax.axvline(1.0, color=COLOURS[1], linewidth=1)
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ax.set_xticks([t for t in FOREST_TICKS if low <= t <= high])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: formatting.format_number(x, 2 if x < 0.1 else 1)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    labels = [f"{r['label']} (referentie)" if r["reference"] else r["label"] for r in rows]
    ax.set_yticks(y, labels, fontsize=7.5)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6, which="both")
    ax.set_axisbelow(True)
    ax.set_title(data["title"], fontsize=8.5, loc="left", y=TITLE_Y)
    return fig


DRAW = {"chain": _draw_chain, "trend": _draw_trend, "area": _draw_area, "forest": _draw_forest}


def draw(plan: FigurePlan, paths: Mapping[str, Path]) -> None:
    """Draw `plan` under the report style and write it once per format (`paths`: format -> file).

    SVG in one pass (`_write_svg`); other formats lay the figure out at their resolution first for the
    tight bounding box they share. rc_context keeps the caller's rcParams as they were.
    """
    with matplotlib.rc_context(STYLE):
        fig = DRAW[plan.kind](plan.data)
        raster = {fmt: path for fmt, path in paths.items() if fmt != "svg"}
        if raster:
            fig.draw_without_rendering()
            box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(PAD)
            for fmt, path in raster.items():
                fig.savefig(path, format=fmt, dpi=DPI, bbox_inches=box, metadata={"Software": None})
        if "svg" in paths:
            _write_svg(fig, paths["svg"])


def _write_svg(fig: MplFigure, path: Path) -> None:
    """Draw `fig` once as SVG (as `savefig` does, text as <text>) and crop it to its tight bounding box
    by the root element's size and viewBox, measured with the same renderer (its text sizes cached):
    one layout instead of savefig's two with `bbox_inches`. The figure's background is widened first
    (it is not in the layout) so the crop is white wherever the tight box reaches past the figure."""
    buffer = io.StringIO()
    width, height = fig.get_size_inches()
    fig.patch.set_bounds(-1, -1, 3, 3)  # figure fractions; only its part inside the crop shows
    fig.dpi = POINTS_PER_INCH  # SVG user units are points, as in `savefig`
    try:
        renderer = MixedModeRenderer(
            fig,
            width,
            height,
            DPI,
            _MeasuredOnceSVG(
                width * POINTS_PER_INCH, height * POINTS_PER_INCH, buffer, image_dpi=DPI, metadata={"Date": None}
            ),
        )
        fig.draw(renderer)
        box = fig.get_tightbbox(renderer).padded(PAD)
        renderer.finalize()
    finally:
        fig.dpi = DPI
    left, top = box.x0 * POINTS_PER_INCH, (height - box.y1) * POINTS_PER_INCH
    w, h = _points(box.width * POINTS_PER_INCH), _points(box.height * POINTS_PER_INCH)
    cropped, found = SVG_ROOT_SIZE.subn(
        f'width="{w}pt" height="{h}pt" viewBox="{_points(left)} {_points(top)} {w} {h}"', buffer.getvalue(), count=1
    )
    if not found:
        raise RuntimeError(f"{path.name}: no size on the root element of the SVG matplotlib wrote")
    path.write_text(cropped, encoding="utf-8")


class _MeasuredOnceSVG(RendererSVG):
    """RendererSVG whose plain-text sizes are measured once per process, not once per figure: the same
    tick labels, titles and legends recur in every figure, and matplotlib caches sizes per renderer.
    A size depends only on the text, its font properties and the font settings (`_font_settings`);
    math text is measured as before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sizes = _TEXT_SIZES.setdefault(_font_settings(), {})

    def get_text_width_height_descent(self, s, prop, ismath):
        if ismath:
            return super().get_text_width_height_descent(s, prop, ismath)
        key = (s, prop.copy())  # FontProperties is mutable; its hash follows its state
        if key not in self._sizes:
            self._sizes[key] = super().get_text_width_height_descent(s, prop, ismath)
        return self._sizes[key]


_TEXT_SIZES: dict[tuple, dict[tuple, tuple[float, float, float]]] = {}  # font settings -> (text, font) -> size


def _font_settings() -> tuple:
    """The rcParams besides a text's own font properties that its measured size depends on: the font
    families a name falls back to, hinting and kerning."""
    keys = sorted(k for k in matplotlib.rcParams if k.startswith(("font.", "text.hinting", "text.kerning")))
    return tuple((key, str(matplotlib.rcParams[key])) for key in keys)


def _points(value: float) -> str:
    """A length in points as SVG attributes carry it: 2 decimals, no trailing zeros ("460.8")."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------------------
# Writing, with the cache


@functools.cache
def code_version() -> str:
    """What besides the plan decides a figure's bytes: matplotlib and the drawing code."""
    sources = hashlib.sha256()
    for module in (__file__, formatting.__file__):
        sources.update(Path(module).read_bytes())
    return f"matplotlib {matplotlib.__version__}; {sources.hexdigest()}"


def plan_hash(plan: FigurePlan, fmt: str) -> str:
    """The cache key of one figure file: its plan's data, the format and the code version."""
    payload = json.dumps(
        {"code": code_version(), "kind": plan.kind, "format": fmt, "data": plan.data},
        sort_keys=True,
        ensure_ascii=True,
        allow_nan=False,
    )
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


class FigureFiles:
    """A report's figure files: named at once, drawn in the background, put in place when asked.

    `start(plans)` returns every figure (files under FIGURES) and starts drawing the files not
    in the cache into `scratch`: in `workers` forked processes (tied to this one) when there are
    at least MIN_PARALLEL_FIGURES, else (or with no workers) here. `place(folder)` waits for the
    drawing, puts every file in `folder` (drawn, or copied from the cache) and updates the cache to hold exactly
    this report's files (so it never grows past one report). Nothing reaches the cache or a
    report folder before `place`: the report's checks may run meanwhile, and when the block is
    left by an error (a failed check, a figure that cannot be drawn) the drawing is stopped and
    the cache stays as it was.
    """

    def __init__(self, formats: Sequence[str], cache_dir: Path | None, scratch: Path, workers: int = 0) -> None:
        self.formats, self.cache_dir, self.scratch, self.workers = tuple(formats), cache_dir, scratch, workers
        self._files: dict[str, tuple[str, bool]] = {}  # file name -> (cache entry, drawn now)
        self._pool: ProcessPoolExecutor | None = None
        self._pending: list[Any] = []

    def __enter__(self) -> FigureFiles:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if self._pool is None:
            return
        if error_type is None:
            self._pool.shutdown(wait=True)
        else:
            gx_process._stop(self._pool)  # a failed check or drawing, or a signal: stop drawing at once

    def start(self, plans: Sequence[FigurePlan]) -> list[Figure]:
        """Every plan in every format; those not in the cache start being drawn."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        missing: list[tuple[FigurePlan, dict[str, Path]]] = []
        for plan in plans:
            paths = {}
            for fmt in self.formats:
                entry, name = f"{plan_hash(plan, fmt)}.{fmt}", f"{plan.stem}.{fmt}"
                cached = self.cache_dir is not None and (self.cache_dir / entry).is_file()
                self._files[name] = (entry, not cached)
                if not cached:
                    paths[fmt] = self.scratch / name
            if paths:
                missing.append((plan, paths))
        if self.workers > 0 and len(missing) >= MIN_PARALLEL_FIGURES:
            # fork: the workers start with matplotlib imported (spawn would import it again in each)
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=get_context("fork"),
                initializer=gx_process.tied_to_parent,
                initargs=(os.getpid(),),
            )
            self._pending = [self._pool.submit(draw, plan, paths) for plan, paths in missing]
        else:
            for plan, paths in missing:
                draw(plan, paths)
        return [
            Figure(p.stem, p.title, p.description, tuple(f"{FIGURES}/{p.stem}.{fmt}" for fmt in self.formats))
            for p in plans
        ]

    def place(self, folder: Path) -> None:
        """Wait for the drawing; every file into `folder`; the cache updated (exactly this report's files)."""
        for future in self._pending:
            future.result()
        folder.mkdir(parents=True, exist_ok=True)
        for name, (entry, drawn) in self._files.items():
            if drawn:
                shutil.move(self.scratch / name, folder / name)
            else:
                shutil.copyfile(self.cache_dir / entry, folder / name)
        if self.cache_dir is not None:
            _store(self.cache_dir, {entry: folder / name for name, (entry, _) in self._files.items()})
        drawn_count = sum(drawn for _, drawn in self._files.values())
        log.info("report: %d figure file(s) drawn, %d from the cache", drawn_count, len(self._files) - drawn_count)


def write_figures(
    plans: Sequence[FigurePlan], folder: Path, formats: Sequence[str], cache_dir: Path | None, workers: int = 0
) -> list[Figure]:
    """Write every plan in every format to `folder` and wait for them (`FigureFiles`)."""
    with tempfile.TemporaryDirectory() as scratch, FigureFiles(formats, cache_dir, Path(scratch), workers) as files:
        written = files.start(plans)
        files.place(folder)
    return written


def _store(cache_dir: Path, files: Mapping[str, Path]) -> None:
    """Put this run's figure files in the cache (atomically, by rename) and drop every other entry."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        entry = cache_dir / name
        if not entry.exists():
            partial = cache_dir / f".{name}.{os.getpid()}.tmp"
            shutil.copyfile(source, partial)
            os.replace(partial, entry)
    for entry in cache_dir.iterdir():
        if entry.name not in files:
            entry.unlink(missing_ok=True)
