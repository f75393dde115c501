"""The panel provider's receipt (`receipt.csv` next to the raw files): rows per wave must match."""

from __future__ import annotations

import pytest
from test_ingest_stage import wave_frame

from survey_pipeline import contracts
from survey_pipeline.artifacts import PROJECT_ROOT, OutputStore, read_json
from survey_pipeline.errors import InputError
from survey_pipeline.sav import write_sav
from survey_pipeline.settings import IngestSettings, load_params
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.ingest import stage as ingest

PARAMS = load_params(PROJECT_ROOT / "params.yaml").model_copy(
    update={"ingest": IngestSettings(raw_dir="raw", file_pattern="wij_panel_{wave}")}
)
ROWS = {2019: 6, 2020: 4, 2021: 3}


@pytest.fixture(scope="module")
def spec():
    return load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture
def raw(tmp_path, spec):
    """Raw files of 2019 (6 rows, .sav), 2020 (4 rows, .csv) and 2021 (3 rows, .sav)."""
    folder = tmp_path / "raw"
    folder.mkdir()
    write_sav(wave_frame(spec, 2019, n=ROWS[2019]), folder / "wij_panel_2019.sav", spec, "Panel 2019")
    wave_frame(spec, 2020, n=ROWS[2020]).to_csv(folder / "wij_panel_2020.csv", index=False)
    write_sav(wave_frame(spec, 2021, n=ROWS[2021]), folder / "wij_panel_2021.sav", spec, "Panel 2021")
    return folder


def _run(tmp_path, spec):
    store = OutputStore(tmp_path / "outputs")
    counts = ingest.run(store, spec, PARAMS, tmp_path)
    store.commit()
    return counts, read_json(tmp_path / "outputs" / "ingest" / "files.json", contracts.IngestFiles)


def test_a_matching_receipt_is_checked_and_recorded(tmp_path, spec, raw):
    (raw / "receipt.csv").write_text(
        "wave,expected_respondents,source,note\n2019,6,Panel BV,levering 15-11\n2020,4,,\n2021,3,,\n", encoding="utf-8"
    )
    counts, files = _run(tmp_path, spec)
    assert counts["files"] == 3 and counts["receipt_checked_waves"] == [2019, 2020, 2021]
    assert files["wij_panel_2019.sav"]["receipt"] == {
        "file": "receipt.csv",
        "checked": True,
        "row": 2,
        "expected_respondents": 6,
        "source": "Panel BV",
        "note": "levering 15-11",
    }
    assert files["wij_panel_2020.csv"]["receipt"]["source"] is None


def test_a_wave_the_receipt_does_not_list_is_recorded_as_unchecked(tmp_path, spec, raw, caplog):
    (raw / "receipt.csv").write_text("wave,expected_respondents\n2019,6\n", encoding="utf-8")
    counts, files = _run(tmp_path, spec)
    assert counts["receipt_checked_waves"] == [2019]
    assert files["wij_panel_2020.csv"]["receipt"] == {"file": "receipt.csv", "checked": False}
    assert "receipt.csv has no line for wave 2020" in caplog.text


@pytest.mark.parametrize(
    ("receipt", "expected"),
    [
        (
            "wave,expected_respondents\n2019,7\n",
            "wij_panel_2019.sav, rule 'receipt': the file has 6 data rows but the panel provider's receipt "
            "(receipt.csv, row 2) says 7 respondents for wave 2019",
        ),
        (
            "wave,expected_respondents\n2019,6\n2020,5\n",
            "wij_panel_2020.csv, rule 'receipt': the file has 4 data rows but the panel provider's receipt "
            "(receipt.csv, row 3) says 5 respondents for wave 2020",
        ),
        (
            "wave,expected_respondents\n2019,6\n2021,5\n",
            "wij_panel_2021.sav, rule 'receipt': the file has 3 data rows but the panel provider's receipt "
            "(receipt.csv, row 3) says 5 respondents for wave 2021",
        ),
        (
            "wave,expected_respondents\n2019,1.000\n",
            "receipt.csv, row 2, column 'expected_respondents', rule 'receipt': a thousands separator or decimal mark "
            "in a whole number: '.' and ',' mean different things in Dutch and English exports; write digits only, "
            "got '1.000'",
        ),
        (
            'wave,expected_respondents\n2019,"1,000"\n',
            "receipt.csv, row 2, column 'expected_respondents', rule 'receipt': a thousands separator or decimal mark "
            "in a whole number: '.' and ',' mean different things in Dutch and English exports; write digits only, "
            "got '1,000'",
        ),
        (
            "wave,expected_respondents\n2019, 6\n",
            "receipt.csv, row 2, column 'expected_respondents', rule 'receipt': spaces around the value (expected a "
            "whole number, digits only), got ' 6'",
        ),
        (
            "wave,expected_respondents\n2019,0\n",
            "receipt.csv, row 2, column 'expected_respondents', rule 'receipt': expected a whole number >= 1, got '0'",
        ),
        (
            "wave,expected_respondents\n2019,6\n2019,6\n",
            "receipt.csv, row 3, column 'wave', rule 'receipt': wave 2019 is listed twice (first at row 2)",
        ),
        (
            "wave,expected_respondents\n2018,6\n",
            "receipt.csv, row 2, column 'wave', rule 'receipt': wave 2018 is not one of the spec's waves "
            "[2019, 2020, 2021]",
        ),
        (
            "wave,expected\n2019,6\n",
            "receipt.csv, rule 'receipt': expected the columns wave, expected_respondents (optional: source, note); "
            "missing ['expected_respondents']",
        ),
        (
            "wave,expected_respondents,comment\n2019,6,x\n",
            "receipt.csv, rule 'receipt': expected the columns wave, expected_respondents (optional: source, note); "
            "unknown ['comment']",
        ),
        ("wave,expected_respondents\n", "receipt.csv, rule 'receipt': the receipt has no rows"),
    ],
)
def test_a_receipt_that_does_not_match_stops_ingest(tmp_path, spec, raw, receipt, expected):
    (raw / "receipt.csv").write_text(receipt, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        _run(tmp_path, spec)
    assert str(caught.value) == expected
    assert not (tmp_path / "outputs" / "ingest").exists()


def test_a_receipt_line_without_its_file_is_the_missing_wave_error(tmp_path, spec, raw):
    (raw / "wij_panel_2021.sav").unlink()
    (raw / "receipt.csv").write_text("wave,expected_respondents\n2019,6\n2021,3\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        _run(tmp_path, spec)
    assert caught.value.rule == "missing_wave" and "2021" in str(caught.value)


def test_the_receipt_is_not_taken_for_a_raw_file(tmp_path, raw):
    (raw / "receipt.csv").write_text("wave,expected_respondents\n2019,6\n", encoding="utf-8")
    assert [p.name for p in ingest.find_raw_files(raw)] == [
        "wij_panel_2019.sav",
        "wij_panel_2020.csv",
        "wij_panel_2021.sav",
    ]
