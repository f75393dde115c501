"""Figures are drawn from plans and cached by a hash of exactly what they show."""

from __future__ import annotations

import hashlib

import pytest

from survey_pipeline.stages.report import figures, tables

SOME = ("heard", "contact_of_heard")  # drawing every figure of the report again and again is slow


def _plans(indicators, spec, waves=(2019, 2020, 2021), indicator_ids=SOME):
    """The chain, and the trend and wijk figures of some indicators."""
    measured = tables.measured_waves(spec, list(waves))
    plans = [figures.chain_plan(indicators, spec, tables.chain_steps(spec), list(waves))]
    for ind in map(spec.indicator, indicator_ids):
        if measured[ind.id]:
            plans.append(figures.trend_plan(indicators, spec, ind, list(waves), [2022, 2023]))
            wijk = figures.area_plan(indicators, spec, ind, measured[ind.id][-1])
            if wijk is not None:
                plans.append(wijk)
    return plans


@pytest.fixture
def drawn(monkeypatch):
    """The stems drawn (not copied from the cache) by each `write_figures` call."""
    stems: list[str] = []
    original = figures.draw

    def counting(plan, paths):
        stems.append(plan.stem)
        original(plan, paths)

    monkeypatch.setattr(figures, "draw", counting)
    return stems


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_an_unchanged_figure_comes_from_the_cache_with_the_same_bytes(tmp_path, published, spec, drawn):
    indicators = published["indicators"]
    plans = _plans(indicators, spec, indicator_ids=["heard"])
    cache = tmp_path / "cache"
    first = figures.write_figures(plans, tmp_path / "a" / "figures", ["svg", "png"], cache)
    assert sorted(drawn) == sorted(p.stem for p in plans)
    assert {f.stem for f in first} == {"keten", "trend_heard", "wijk_heard"}
    drawn.clear()
    second = figures.write_figures(plans, tmp_path / "b" / "figures", ["svg", "png"], cache)
    assert drawn == [] and second == first
    assert _digest(tmp_path / "a" / "figures") == _digest(tmp_path / "b" / "figures")
    assert len(list(cache.iterdir())) == 2 * len(plans)


def test_a_changed_number_redraws_only_the_figure_that_shows_it(tmp_path, published, spec, drawn):
    indicators = published["indicators"].copy()
    cache = tmp_path / "cache"
    figures.write_figures(_plans(indicators, spec), tmp_path / "a" / "figures", ["svg"], cache)
    # one wijk of one indicator in its latest wave: only that indicator's wijk figure shows it
    wijk = indicators.index[
        (indicators["indicator_id"] == "heard")
        & (indicators["wave"] == 2021)
        & (indicators["breakdown"] == "wijk")
        & ~indicators["suppressed"]
    ][0]
    indicators.loc[wijk, "estimate"] += 1e-9
    drawn.clear()
    changed = _plans(indicators, spec)
    figures.write_figures(changed, tmp_path / "b" / "figures", ["svg"], cache)
    assert drawn == ["wijk_heard"]
    # the cache now holds exactly this run's files: the superseded wijk figure is gone
    assert sorted(e.name for e in cache.iterdir()) == sorted(f"{figures.plan_hash(p, 'svg')}.svg" for p in changed)


def test_changed_labels_level_or_drawing_code_redraw(tmp_path, published, spec, drawn, monkeypatch):
    indicators = published["indicators"]
    cache = tmp_path / "cache"
    plans = _plans(indicators, spec)
    figures.write_figures(plans, tmp_path / "a" / "figures", ["svg"], cache)

    heard = spec.indicator("heard")
    relabelled = heard.model_copy(update={"label": heard.label + " (herzien)"})
    drawn.clear()
    figures.write_figures(
        [figures.trend_plan(indicators, spec, relabelled, [2019, 2020, 2021], [2022, 2023])],
        tmp_path / "b" / "figures",
        ["svg"],
        cache,
    )
    assert drawn == ["trend_heard"]

    other_level = indicators.assign(level=0.9)  # the level is printed in every legend
    drawn.clear()
    figures.write_figures(_plans(other_level, spec), tmp_path / "c" / "figures", ["svg"], cache)
    assert sorted(drawn) == sorted(p.stem for p in plans)

    monkeypatch.setattr(figures, "code_version", lambda: "matplotlib 0.0; another drawing")
    drawn.clear()
    figures.write_figures(plans, tmp_path / "d" / "figures", ["svg"], cache)
    assert sorted(drawn) == sorted(p.stem for p in plans)


def test_figures_drawn_in_a_process_pool_are_the_figures_drawn_in_process(tmp_path, published, spec):
    plans = _plans(published["indicators"], spec)
    assert len(plans) >= figures.MIN_PARALLEL_FIGURES
    figures.write_figures(plans, tmp_path / "serial", ["svg"], None, workers=0)
    figures.write_figures(plans, tmp_path / "pool", ["svg"], None, workers=2)
    assert _digest(tmp_path / "serial") == _digest(tmp_path / "pool")


@pytest.mark.parametrize("workers", [0, 1])
def test_a_figure_that_cannot_be_drawn_fails_the_write_and_leaves_the_cache_alone(tmp_path, published, spec, workers):
    plans = _plans(published["indicators"], spec)
    cache = tmp_path / "cache"
    figures.write_figures(plans[:1], tmp_path / "a", ["svg"], cache)
    before = sorted(e.name for e in cache.iterdir())
    broken = figures.FigurePlan("pie", "taart", "taart", "taart", {})
    with pytest.raises(KeyError):
        figures.write_figures([*plans, broken], tmp_path / "b", ["svg"], cache, workers=workers)
    assert sorted(e.name for e in cache.iterdir()) == before
