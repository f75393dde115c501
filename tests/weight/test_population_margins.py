"""Population margins: file checks, equal totals, categories in both directions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from survey_pipeline.errors import InputError
from survey_pipeline.population import check_categories, load_cells, load_margins, wave_margins
from survey_pipeline.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spec():
    return load_spec(ROOT / "questionnaires" / "wij_monitor.yaml")


def _margins(spec, wave=2020, scale=1.0):
    """Margins of a tiny population: 2000 residents (wijk: 2000 x scale), every category present."""
    rows = []
    for variable in ("age_group", "sex", "wijk"):
        codes = list(spec.background[variable].codes)
        total = round(2000 * scale) if variable == "wijk" else 2000
        counts = np.full(len(codes), total // len(codes), dtype=int)
        counts[0] += total - counts.sum()
        for code, count in zip(codes, counts):
            rows.append((wave, variable, code, spec.background[variable].codes[code], count))
    return pd.DataFrame(rows, columns=["wave", "variable", "code", "label", "count"])


def _write(tmp_path, frame, name="margins.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_the_committed_margins_load_and_have_equal_totals(spec):
    margins = load_margins(ROOT / "data" / "population" / "margins.csv", spec)
    for wave in spec.waves:
        checked = wave_margins(margins, wave, ["age_group", "sex", "wijk"], 0.0, file="margins.csv")
        assert checked.max_total_difference == 0.0
        assert [m.codes.size for m in checked.margins] == [4, 2, 30]


def test_load_returns_typed_columns(spec, tmp_path):
    loaded = load_margins(_write(tmp_path, _margins(spec)), spec)
    assert list(loaded.columns) == ["wave", "variable", "code", "label", "count"]
    assert loaded["wave"].dtype == np.int64 and loaded["code"].dtype == np.int64
    assert loaded["count"].dtype == np.float64


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("code", 2.5, "whole number"),
        ("count", -3, "whole number >= 0"),
        ("count", "veel", "not a whole number"),
        ("variable", "income", "not a background variable"),
        ("code", 31, "not a code of 'wijk'"),
    ],
)
def test_bad_rows_name_file_row_and_column(spec, tmp_path, column, value, message):
    frame = _margins(spec).astype({"code": object, "count": object})
    row = frame.index[frame["variable"] == "wijk"][3]
    frame.loc[row, column] = value
    with pytest.raises(InputError, match=message) as caught:
        load_margins(_write(tmp_path, frame), spec)
    assert caught.value.row == row + 2
    assert caught.value.column == column
    assert caught.value.file.endswith("margins.csv")


def test_missing_column_duplicate_row_and_missing_file(spec, tmp_path):
    with pytest.raises(InputError, match="missing column"):
        load_margins(_write(tmp_path, _margins(spec).drop(columns="label")), spec)
    frame = _margins(spec)
    with pytest.raises(InputError, match="duplicate"):
        load_margins(_write(tmp_path, pd.concat([frame, frame.iloc[[5]]])), spec)
    with pytest.raises(InputError, match="not found"):
        load_margins(tmp_path / "absent.csv", spec)


def test_totals_that_differ_beyond_the_tolerance_name_both_margins(spec, tmp_path):
    margins = load_margins(_write(tmp_path, _margins(spec, scale=1.01)), spec)
    with pytest.raises(InputError) as caught:
        wave_margins(margins, 2020, ["age_group", "sex", "wijk"], 0.001, file="margins.csv")
    text = str(caught.value)
    assert "'wijk' sums to 2,020" in text and "'age_group' sums to 2,000" in text
    assert caught.value.rule == "margin_totals" and caught.value.column == "wijk"


def test_totals_within_the_tolerance_are_scaled_to_the_first_margin(spec, tmp_path):
    margins = load_margins(_write(tmp_path, _margins(spec, scale=1.0005)), spec)
    checked = wave_margins(margins, 2020, ["age_group", "sex", "wijk"], 0.001, file="margins.csv")
    assert checked.max_total_difference == pytest.approx(0.0005)
    assert [m.total for m in checked.margins] == pytest.approx([2000.0, 2000.0, 2000.0], rel=1e-12)


def test_a_missing_wave_or_margin_is_an_error(spec, tmp_path):
    margins = load_margins(_write(tmp_path, _margins(spec)), spec)
    with pytest.raises(InputError, match="no population margins for wave 2019"):
        wave_margins(margins, 2019, ["sex"], 0.0, file="margins.csv")
    with pytest.raises(InputError, match="no population margin for 'sex'"):
        wave_margins(margins[margins["variable"] != "sex"], 2020, ["age_group", "sex"], 0.0, file="m")


def test_a_population_wijk_without_respondents_is_a_clear_error(spec, tmp_path):
    margins = load_margins(_write(tmp_path, _margins(spec)), spec)
    wijk = wave_margins(margins, 2020, ["wijk"], 0.0, file="margins.csv").margins[0]
    sample = np.array([c for c in range(1, 31) if c != 28] * 3, dtype=float)
    with pytest.raises(InputError) as caught:
        check_categories(wijk, sample, 2020, file="margins.csv", labels=spec.background["wijk"].codes)
    text = str(caught.value)
    assert "wave 2020" in text and "'wijk' category 28 (Meerstad)" in text and "no respondents" in text
    assert caught.value.rule == "margin_category"


def test_a_sample_category_without_population_is_a_clear_error(spec, tmp_path):
    frame = _margins(spec)
    frame.loc[(frame["variable"] == "wijk") & (frame["code"] == 5), "count"] = 0.0
    margins = load_margins(_write(tmp_path, frame), spec)
    wijk = wave_margins(margins, 2020, ["wijk"], 1.0, file="margins.csv").margins[0]
    sample = np.arange(1, 31, dtype=float)
    with pytest.raises(
        InputError, match=r"category 5 \(Noorderplantsoenbuurt\) has 1 respondent\(s\) but no population"
    ):
        check_categories(wijk, sample, 2020, file="margins.csv", labels=spec.background["wijk"].codes)
    assert check_categories(wijk, sample[sample != 5], 2020, file="m", labels={}).tolist() == [
        i for i in range(30) if i != 4
    ]


def test_cells_are_summed_to_the_requested_variables(spec, tmp_path):
    cells = pd.DataFrame(
        {
            "wave": [2020] * 4,
            "age_group": [1, 1, 2, 2],
            "sex": [1, 2, 1, 2],
            "wijk": [1, 1, 1, 1],
            "count": [5, 6, 7, 8],
        }
    )
    loaded = load_cells(_write(tmp_path, cells, "cells.csv"), spec, ["age_group"])
    assert loaded.to_dict("list") == {"wave": [2020, 2020], "age_group": [1, 2], "count": [11.0, 15.0]}
    cells.loc[2, "sex"] = 3
    with pytest.raises(InputError, match="not a code of 'sex'") as caught:
        load_cells(_write(tmp_path, cells, "cells.csv"), spec, ["sex"])
    assert caught.value.row == 4


def test_totals_differing_because_a_category_row_is_missing_name_the_category(spec, tmp_path):
    frame = _margins(spec)
    frame = frame[~((frame["variable"] == "wijk") & frame["code"].isin([5, 28]))]
    margins = load_margins(_write(tmp_path, frame), spec)
    categories = {name: spec.background[name].codes for name in ("age_group", "sex", "wijk")}
    with pytest.raises(InputError) as caught:
        wave_margins(margins, 2020, ["age_group", "sex", "wijk"], 0.001, file="margins.csv", categories=categories)
    assert caught.value.message == (
        "wave 2020: margin 'wijk' sums to 1,868 but 'age_group' sums to 2,000 (relative difference 6.60e-02 > "
        "tolerance 1.00e-03); no row in the file for wijk 5 (Noorderplantsoenbuurt), wijk 28 (Meerstad)"
    )


# Exports from Dutch and English spreadsheets: never read as 75.826 (or 75826) residents.
FOREIGN_NUMBERS = {
    "75.826": "thousands separator or decimal mark",
    "75,826": "thousands separator or decimal mark",
    "1.234.567": "thousands separator or decimal mark",
    "7,5e3": "a comma in a whole number",
    " 12 ": "spaces around the value",
    "75826.0": "not a whole number",
    "": "empty value",
}


@pytest.mark.parametrize("text", list(FOREIGN_NUMBERS))
@pytest.mark.parametrize("column", ["count", "code", "wave"])
def test_margins_numbers_are_parsed_strictly(spec, tmp_path, text, column):
    frame = _margins(spec).astype({column: object})
    frame.loc[5, column] = text
    with pytest.raises(InputError) as caught:
        load_margins(_write(tmp_path, frame), spec)
    assert (caught.value.row, caught.value.column) == (7, column)
    assert FOREIGN_NUMBERS[text] in caught.value.message and f"got {text!r}" in caught.value.message


@pytest.mark.parametrize("text", list(FOREIGN_NUMBERS))
@pytest.mark.parametrize("column", ["count", "sex"])
def test_cells_numbers_are_parsed_strictly(spec, tmp_path, text, column):
    cells = pd.DataFrame({"wave": [2020] * 2, "sex": [1, 2], "count": [75826, 75001]}).astype({column: object})
    cells.loc[1, column] = text
    with pytest.raises(InputError) as caught:
        load_cells(_write(tmp_path, cells, "cells.csv"), spec, ["sex"])
    assert (caught.value.row, caught.value.column, caught.value.file) == (3, column, str(tmp_path / "cells.csv"))
    assert FOREIGN_NUMBERS[text] in caught.value.message
