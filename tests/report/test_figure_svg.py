"""SVG figures are drawn in one pass and cropped to the box of matplotlib's own tight SVG."""

from __future__ import annotations

import io
import re

import matplotlib
import pytest

from survey_pipeline.stages.report import figures, tables

SIZE = re.compile(r'<svg [^>]*width="([0-9.]+)pt" height="([0-9.]+)pt" viewBox="(-?[0-9.]+) (-?[0-9.]+) ')
TEXT = re.compile(r'<text [^>]*x="(-?[0-9.]+)" y="(-?[0-9.]+)"[^>]*>([^<]*)</text>')


def _tight_svg(plan: figures.FigurePlan) -> str:
    """The plan as matplotlib writes it itself with a tight bounding box (two layouts)."""
    buffer = io.StringIO()
    with matplotlib.rc_context(figures.STYLE):
        fig = figures.DRAW[plan.kind](plan.data)
        fig.savefig(buffer, format="svg", bbox_inches="tight", pad_inches=figures.PAD, metadata={"Date": None})
    return buffer.getvalue()


@pytest.mark.parametrize("kind", ["chain", "trend", "area"])
def test_the_one_pass_svg_shows_what_matplotlibs_tight_svg_shows(tmp_path, published, spec, kind):
    """The same size, and every text at the same place relative to the cropped box (within 0.01 pt)."""
    indicators = published["indicators"]
    heard = spec.indicator("heard")
    plan = {
        "chain": lambda: figures.chain_plan(indicators, spec, tables.chain_steps(spec), [2019, 2020, 2021]),
        "trend": lambda: figures.trend_plan(indicators, spec, heard, [2019, 2020, 2021], [2022, 2023]),
        "area": lambda: figures.area_plan(indicators, spec, heard, 2021),
    }[kind]()
    figures.draw(plan, {"svg": tmp_path / "one_pass.svg"})
    ours, theirs = (tmp_path / "one_pass.svg").read_text(encoding="utf-8"), _tight_svg(plan)
    width, height, left, top = map(float, SIZE.search(ours).groups())
    tight_width, tight_height, tight_left, tight_top = map(float, SIZE.search(theirs).groups())
    assert (tight_left, tight_top) == (0, 0) and (left, top) != (0, 0)  # ours is cropped by its viewBox
    assert width == pytest.approx(tight_width, abs=0.01) and height == pytest.approx(tight_height, abs=0.01)
    texts = [(float(x) - left, float(y) - top, text) for x, y, text in TEXT.findall(ours)]
    tight_texts = [(float(x), float(y), text) for x, y, text in TEXT.findall(theirs)]
    assert [t for *_, t in texts] == [t for *_, t in tight_texts] and texts
    for (x, y, _), (tight_x, tight_y, _) in zip(texts, tight_texts):
        assert x == pytest.approx(tight_x, abs=0.01) and y == pytest.approx(tight_y, abs=0.01)


def test_text_sizes_kept_across_figures_are_per_font_settings():
    """A size measured for one figure is reused for the next only under the same font settings."""
    from matplotlib.backends.backend_svg import RendererSVG
    from matplotlib.font_manager import FontProperties

    font = FontProperties(family="sans-serif", size=9)  # the family resolved by the font settings

    def sizes(renderer_type):
        def measure():
            return renderer_type(100, 100, io.StringIO()).get_text_width_height_descent("Wijk Oost", font, False)

        with matplotlib.rc_context(figures.STYLE):
            sans = measure()
            with matplotlib.rc_context({"font.sans-serif": ["DejaVu Serif"]}):
                serif = measure()
        return sans, serif

    assert sizes(RendererSVG) == sizes(figures._MeasuredOnceSVG) == sizes(figures._MeasuredOnceSVG)
    assert sizes(RendererSVG)[0] != sizes(RendererSVG)[1]  # the settings change the size
