"""Figures of the report (matplotlib, Agg backend): the routing chain, trends, and wijken.

Every figure shows the confidence interval of each estimate; suppressed
estimates are never drawn, only marked "niet gepubliceerd". Files are written
with fixed metadata so a rerun on the same numbers gives the same bytes.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import FuncFormatter

from survey_pipeline.report.formatting import dutch_target, format_percent
from survey_pipeline.report.tables import TOTAL, ChainStep
from survey_pipeline.small_area import SOURCE_MODEL as MODEL_SOURCE
from survey_pipeline.spec import ALL_RESIDENTS, Indicator, QuestionnaireSpec
from survey_pipeline.targets import parse_target

DPI = 150
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
MODEL_NOTE = (f"(m) {MODEL_LABEL}: geschat met een model uit de wijkkenmerken en de andere wijken, "
              "niet design-zuiver; zie de onderzoeksverantwoording")
COLOURS = ("#00689e", "#e5720b", "#5a9b3c", "#8e5ea2", "#c0392b")
PERCENT = FuncFormatter(lambda y, _: format_percent(y, 0))


@dataclass(frozen=True)
class Figure:
    """A written figure: `stem` is the file name without extension (under `figures/`)."""

    stem: str
    title: str
    description: str
    files: tuple[str, ...]


def numeric_target(target: str) -> float | None:
    """The level of a target such as ">80%", ">=85%", "20%" or "afname <20%" (the spec's grammar,
    `survey_pipeline.targets`); None for "toename", "kengetal" etc."""
    level = parse_target(target).level
    return level.value if level is not None else None


def _level_text(indicators: pd.DataFrame) -> str:
    """The confidence level of the intervals in the table, as printed ("95%")."""
    return format_percent(float(indicators["level"].iloc[0]))


def _new_figure(figsize: tuple[float, float], ncols: int = 1, **subplot_kw):
    """A bare Figure on an Agg canvas (object-oriented API: nothing is registered with pyplot)."""
    fig = MplFigure(figsize=figsize, dpi=DPI)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, **subplot_kw)


def _save(fig, folder: Path, stem: str, formats: Sequence[str]) -> tuple[str, ...]:
    """Write each format with one tight bounding box (computed once: layout is the costly draw)."""
    folder.mkdir(parents=True, exist_ok=True)
    fig.draw_without_rendering()
    box = fig.get_tightbbox(fig.canvas.get_renderer()).padded(0.1)
    files = []
    for fmt in formats:
        path = folder / f"{stem}.{fmt}"
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(path, format=fmt, dpi=DPI, bbox_inches=box, metadata=metadata)
        files.append(f"{folder.name}/{path.name}")
    return tuple(files)


def _styled(draw):
    """Build and save a figure under the report style (rc_context: the caller's rcParams stay as they were)."""
    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)
    return wrapper


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))


def _totals(indicators: pd.DataFrame) -> pd.DataFrame:
    return indicators[indicators["breakdown"] == TOTAL].set_index(["indicator_id", "wave"])


def _short_labels(steps: Sequence[Indicator]) -> list[str]:
    """Labels without their common opening words ("% Bewoners (18 jaar e.o.) dat aangeeft ...")."""
    words = [s.label.split() for s in steps]
    common = 0
    while all(len(w) > common + 1 for w in words) and len({w[common] for w in words}) == 1:
        common += 1
    return [" ".join(w[common:]) for w in words]


def _error_bars(ax, x, rows: list, colour: str, width: float | None = None, label: str | None = None) -> None:
    """Bars (width given) or points with CI whiskers; suppressed rows get a "-" marker only."""
    shown = [(xi, r) for xi, r in zip(x, rows) if r is not None and not r["suppressed"]]
    hidden = [xi for xi, r in zip(x, rows) if r is not None and r["suppressed"]]
    if shown:
        xs = np.array([xi for xi, _ in shown])
        est = np.array([r["estimate"] for _, r in shown])
        err = np.vstack([est - np.array([r["ci_lower"] for _, r in shown]),
                         np.array([r["ci_upper"] for _, r in shown]) - est])
        if width is not None:
            ax.bar(xs, est, width=width, color=colour, label=label, alpha=0.85)
            ax.errorbar(xs, est, yerr=err, fmt="none", ecolor="#222222", capsize=3, linewidth=1)
            for xi, e, top in zip(xs, est, est + err[1]):
                ax.text(xi, top + 0.01, format_percent(e), ha="center", va="bottom", fontsize=7)
        else:
            ax.errorbar(xs, est, yerr=err, fmt="o-", color=colour, capsize=4, label=label, zorder=3)
    for xi in hidden:
        ax.text(xi, 0.02, "-", ha="center", va="bottom", fontsize=10)


@_styled
def chain_figure(indicators: pd.DataFrame, spec: QuestionnaireSpec, steps: Sequence[ChainStep],
                 waves: Sequence[int], folder: Path, formats: Sequence[str]) -> Figure:
    """Per wave: each step of the chain as a share of the previous step, and as a share of all residents."""
    totals = _totals(indicators)
    conditional = [s.conditional for s in steps]
    short = _short_labels(conditional)
    fig, axes = _new_figure((11, 4.8), 2, sharey=True)
    width = 0.8 / len(steps)
    x = np.arange(len(waves), dtype=float)
    panels = (
        (axes[0], [s.conditional for s in steps], "Per stap: als deel van de vorige stap"),
        (axes[1], [s.of_residents for s in steps], f"Als deel van {spec.groups[ALL_RESIDENTS].label}"),
    )
    for ax, inds, title in panels:
        for k, ind in enumerate(inds):
            if ind is None:
                continue
            rows = [totals.loc[(ind.id, w)] if (ind.id, w) in totals.index else None for w in waves]
            label = short[k] if ax is axes[1] else f"{short[k]} ({spec.base_text(ind.base)})"
            _error_bars(ax, x + (k - (len(steps) - 1) / 2) * width, rows, COLOURS[k % len(COLOURS)], width=width * 0.95,
                        label=_wrap(label, 60))
        ax.set_xticks(x, [str(w) for w in waves])
        ax.set_ylim(0, 1.08)
        ax.yaxis.set_major_formatter(PERCENT)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.legend(loc="upper center", ncol=1, frameon=False, bbox_to_anchor=(0.5, -0.08), fontsize=8)
    fig.suptitle(f"Van gehoord naar contact naar geholpen, per meting (met {_level_text(indicators)}-"
                 "betrouwbaarheidsinterval)", fontsize=11)
    description = "De keten " + " \u2192 ".join(short) + " per meting, met betrouwbaarheidsintervallen."
    return Figure("keten", "De keten per meting", description, _save(fig, folder, "keten", formats))


@_styled
def trend_figure(indicators: pd.DataFrame, spec: QuestionnaireSpec, ind: Indicator, waves: Sequence[int],
                 target_years: Sequence[int], folder: Path, formats: Sequence[str]) -> Figure:
    """An indicator over the measured waves with its CI, and its targets per year."""
    totals = _totals(indicators)
    measured = [w for w in waves if (ind.id, w) in totals.index]
    years = sorted({*waves, *target_years, *(y for y in ind.targets if min(waves) <= y <= max([*waves, *target_years]))})
    fig, ax = _new_figure((6.4, 3.6))
    level = _level_text(indicators)
    _error_bars(ax, measured, [totals.loc[(ind.id, w)] for w in measured], COLOURS[0], label=f"behaald ({level}-BI)")
    first = True
    for year in years:
        target = ind.targets.get(year)
        if not target:
            continue
        label = dutch_target(target)
        value = numeric_target(target)
        if value is not None:
            ax.plot([year - 0.3, year + 0.3], [value, value], color=COLOURS[1], linewidth=2.2, zorder=1,
                    label="streefwaarde" if first else None)
            if len(label) <= 5:  # short labels beside the bar, clear of the estimate's CI
                ax.text(year + 0.32, value, label, ha="left", va="center", fontsize=6.5, color=COLOURS[1])
            else:
                ax.text(year, value + 0.03, label, ha="center", va="bottom", fontsize=6.5, color=COLOURS[1])
            first = False
        else:
            ax.text(year, 0.04, label, ha="center", va="bottom", fontsize=7, color="#666666", rotation=90)
    ax.set_xticks(years, [str(y) for y in years])
    ax.set_xlim(min(years) - 0.6, max(years) + 0.6)
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PERCENT)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(_wrap(ind.label, 80) + "\n" + _wrap(spec.base_text(ind.base), 90), fontsize=8.5, loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=7, frameon=False)
    stem = f"trend_{ind.id}"
    return Figure(stem, ind.label, f"Ontwikkeling per meting met {level}-betrouwbaarheidsinterval en streefwaarden: {ind.label}",
                  _save(fig, folder, stem, formats))


@_styled
def wijk_figure(indicators: pd.DataFrame, spec: QuestionnaireSpec, ind: Indicator, wave: int,
                folder: Path, formats: Sequence[str], small_area: pd.DataFrame | None = None) -> Figure | None:
    """The wijken of one wave side by side with CIs and the municipal total; None if no wijk is published.

    With the small-area table (`outputs/estimate/sae.parquet`), a wijk whose direct
    estimate is suppressed shows its published model-based estimate instead, marked
    "modelschatting" (another marker and colour, interval from the MSE).
    """
    rows = indicators[(indicators["indicator_id"] == ind.id) & (indicators["wave"] == wave)]
    wijken = rows[rows["breakdown"] == "wijk"].assign(model=False)
    total = rows[rows["breakdown"] == TOTAL]
    if small_area is not None and len(small_area):
        model = small_area[(small_area["indicator_id"] == ind.id) & (small_area["wave"] == wave)
                           & (small_area["published_source"] == MODEL_SOURCE)].set_index("wijk")
        codes = wijken["breakdown_code"].astype("int64")
        chosen = codes.isin(model.index).to_numpy() & wijken["suppressed"].to_numpy()
        for column, source in (("estimate", "published_estimate"), ("ci_lower", "published_ci_lower"),
                               ("ci_upper", "published_ci_upper")):
            wijken.loc[chosen, column] = model[source].reindex(codes[chosen]).to_numpy()
        wijken.loc[chosen, "suppressed"] = False
        wijken.loc[chosen, "model"] = True
    if not (~wijken["suppressed"]).any():
        return None
    shown = wijken[~wijken["suppressed"]].sort_values("estimate")
    hidden = wijken[wijken["suppressed"]].sort_values("breakdown_label", ascending=False)
    labels = [*hidden["breakdown_label"], *shown["breakdown_label"]]
    fig, ax = _new_figure((7.2, 0.22 * len(labels) + 1.6))
    y_shown = np.arange(len(hidden), len(labels))
    for is_model, marker, colour, label in ((False, "o", COLOURS[0], f"wijk ({_level_text(indicators)}-BI)"),
                                            (True, "D", COLOURS[3], f"{MODEL_LABEL} (95%-BI uit de MSE)")):
        part = (shown["model"] == is_model).to_numpy()
        if part.any():
            est = shown["estimate"].to_numpy()[part]
            err = np.vstack([est - shown["ci_lower"].to_numpy()[part], shown["ci_upper"].to_numpy()[part] - est])
            ax.errorbar(est, y_shown[part], xerr=err, fmt=marker, color=colour, capsize=2, markersize=4, label=label)
    for y in range(len(hidden)):
        ax.text(0.01, y, HIDDEN, va="center", fontsize=7, color="#666666")
    if len(total) and not bool(total["suppressed"].iloc[0]):
        t = total.iloc[0]
        ax.axvspan(t["ci_lower"], t["ci_upper"], color=COLOURS[1], alpha=0.15, linewidth=0)
        ax.axvline(t["estimate"], color=COLOURS[1], linewidth=1.5, label=f"gemeente: {format_percent(t['estimate'])}")
    ticks = [*hidden["breakdown_label"], *(f"{name} (m)" if m else name
                                           for name, m in zip(shown["breakdown_label"], shown["model"]))]
    ax.set_yticks(np.arange(len(labels)), ticks, fontsize=7.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.xaxis.set_major_formatter(PERCENT)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.set_title(_wrap(ind.label, 80) + "\n" + _wrap(f"{spec.base_text(ind.base)}, per wijk, {wave}", 90),
                 fontsize=8.5, loc="left")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), borderaxespad=2.8, ncol=2, fontsize=7, frameon=False)
    notes = [HIDDEN_REASON] if len(hidden) else []
    if shown["model"].any():
        notes.append(MODEL_NOTE)
    if notes:  # once, under the legend, rather than on every row
        ax.annotate("\n".join(notes), xy=(0.5, 0.0), xycoords="axes fraction", xytext=(0, -40),
                    textcoords="offset points", ha="center", va="top", fontsize=7, color="#666666")
    stem = f"wijken_{ind.id}"
    described = " en modelschattingen (m) waar het directe cijfer te onzeker is" if shown["model"].any() else ""
    return Figure(stem, f"{ind.label} per wijk ({wave})",
                  f"Vergelijking van de wijken in {wave} met {_level_text(indicators)}-betrouwbaarheidsintervallen"
                  f"{described}: {ind.label}",
                  _save(fig, folder, stem, formats))
