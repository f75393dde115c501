"""Schema-checked tables and the staged output store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pytest
from pandera.typing import Series

from survey_pipeline import artifacts
from survey_pipeline.artifacts import OutputStore, SchemaCheckError, read_table, write_table
from survey_pipeline.errors import InputError


class Shares(pa.DataFrameModel):
    wave: Series[int]
    estimate: Series[float] = pa.Field(in_range={"min_value": 0, "max_value": 1})

    class Config:
        name = "test_shares"
        strict = True


class Rows(pa.DataFrameModel):
    resp_id: Series[int]
    wave: Series[int]

    class Config:
        name = "test_rows"
        strict = True
        unique = ["resp_id", "wave"]


def _spec_naming(**survey_names: str):
    """The demo spec with the survey's respondent id and wave variable named otherwise."""
    import yaml

    from survey_pipeline.spec import parse_spec

    raw = yaml.safe_load((artifacts.PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))
    raw["survey"].update(survey_names)
    return parse_spec(raw)


def test_survey_columns_are_checked_under_the_spec_names(tmp_path):
    """The contracts call the respondent id and wave variable resp_id and wave; a survey whose
    spec names them otherwise has its own columns checked as those, and keeps its names."""
    spec = _spec_naming(respondent_id="nr.panel", wave_variable="jaar")
    frame = pd.DataFrame({"nr.panel": [1, 2], "jaar": [2019, 2019]})
    checked = artifacts.check_table(frame, Rows, file="f", spec=spec)
    assert list(checked.columns) == ["nr.panel", "jaar"]
    with pytest.raises(SchemaCheckError, match="unique"):
        artifacts.check_table(frame.assign(**{"nr.panel": [1, 1]}), Rows, file="f", spec=spec)
    with pytest.raises(SchemaCheckError):  # without the spec the survey's names are unknown columns
        artifacts.check_table(frame, Rows, file="f")


def test_table_round_trip(tmp_path):
    frame = pd.DataFrame({"wave": [2019, 2020], "estimate": [0.78, 0.81]})
    write_table(frame, tmp_path / "t.parquet", Shares)
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet", Shares), frame)


def test_write_refuses_a_table_that_breaks_its_schema(tmp_path):
    frame = pd.DataFrame({"wave": [2019, 2020], "estimate": [0.78, 1.2]})
    with pytest.raises(SchemaCheckError) as caught:
        write_table(frame, tmp_path / "t.parquet", Shares)
    assert "estimate" in str(caught.value) and "row 1" in str(caught.value)
    assert not (tmp_path / "t.parquet").exists()


def test_read_refuses_a_tampered_table(tmp_path):
    pd.DataFrame({"wave": [2019], "estimate": [0.5], "respondent": [17]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(SchemaCheckError, match="respondent"):
        read_table(tmp_path / "t.parquet", Shares)


def _counting_checks(monkeypatch) -> list[str]:
    """The files `check_table` is called for from now on."""
    checked: list[str] = []
    check_table = artifacts.check_table

    def counting(frame, contract, *, file, spec=None):
        checked.append(Path(file).name)
        return check_table(frame, contract, file=file, spec=spec)

    monkeypatch.setattr(artifacts, "check_table", counting)
    return checked


def test_a_table_this_process_checked_and_wrote_is_read_back_without_a_second_check(tmp_path, monkeypatch):
    frame = pd.DataFrame({"wave": [2019, 2020], "estimate": [0.78, 0.81]})
    written = write_table(frame, tmp_path / "t.parquet", Shares)
    checked = _counting_checks(monkeypatch)
    read = read_table(tmp_path / "t.parquet", Shares)
    assert checked == []
    pd.testing.assert_frame_equal(read, written)
    pd.testing.assert_frame_equal(read, artifacts.check_table(read, Shares, file="again"))  # what a check returns
    read_table(tmp_path / "t.parquet", OtherShares)  # under another contract: checked
    assert checked == ["again", "t.parquet"]


class OtherShares(Shares):
    class Config:
        name = "test_other_shares"
        strict = True


def test_a_table_read_under_other_survey_column_names_than_it_was_written_with_is_checked(tmp_path, monkeypatch):
    spec = _spec_naming(respondent_id="nr.panel", wave_variable="jaar")
    path = tmp_path / "rows.parquet"
    write_table(pd.DataFrame({"nr.panel": [1, 2], "jaar": [2019, 2019]}), path, Rows, spec)
    checked = _counting_checks(monkeypatch)
    assert list(read_table(path, Rows, spec).columns) == ["nr.panel", "jaar"]
    assert checked == []
    with pytest.raises(SchemaCheckError):  # without the spec its columns are unknown to the contract
        read_table(path, Rows)
    assert checked == ["rows.parquet"]


def test_a_table_edited_in_place_since_this_process_wrote_it_is_checked_on_read(tmp_path):
    """Same file, same size and the old modification time put back: the bytes differ, so it is checked."""
    path = tmp_path / "t.parquet"
    write_table(pd.DataFrame({"wave": [2019], "estimate": [0.5]}), path, Shares)
    before = path.stat()
    pd.DataFrame({"wave": [2019], "estimate": [1.5]}).to_parquet(tmp_path / "bad.parquet", index=False)
    tampered = (tmp_path / "bad.parquet").read_bytes()
    assert len(tampered) == before.st_size
    with path.open("r+b") as handle:
        handle.write(tampered)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    with pytest.raises(SchemaCheckError, match="estimate"):
        read_table(path, Shares)


def test_a_table_replaced_or_rewritten_by_another_process_is_checked_on_read(tmp_path, monkeypatch):
    """The same bytes again, but not from this process's write: checked (a stage verb reads what an earlier
    stage's process wrote; a file put in place of the one written here)."""
    path = tmp_path / "t.parquet"
    frame = pd.DataFrame({"wave": [2019], "estimate": [0.5]})
    write_table(frame, path, Shares)
    content = path.read_bytes()
    checked = _counting_checks(monkeypatch)
    rewrite = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_bytes(pathlib.Path(sys.argv[2]).read_bytes())"
    (tmp_path / "same.parquet").write_bytes(content)
    subprocess.run([sys.executable, "-c", rewrite, str(path), str(tmp_path / "same.parquet")], check=True)
    assert path.read_bytes() == content
    read_table(path, Shares)
    assert checked == ["t.parquet"]

    write_table(frame, path, Shares)
    checked.clear()
    os.replace(tmp_path / "same.parquet", path)
    read_table(path, Shares)
    assert checked == ["t.parquet"]


def test_missing_stage_input_names_the_file(tmp_path):
    with pytest.raises(InputError, match="run the earlier stage first"):
        read_table(tmp_path / "absent.parquet", Shares)


def test_store_swaps_staged_folders_only_on_commit(tmp_path):
    store = OutputStore(tmp_path / "outputs")
    with store.writing("weight") as out:
        (out / "weights.txt").write_text("new")
    assert store.reading("weight") == out
    assert not (tmp_path / "outputs" / "weight").exists()
    store.commit()
    assert (tmp_path / "outputs" / "weight" / "weights.txt").read_text() == "new"
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["weight"]


def test_store_discards_a_stage_whose_block_raised(tmp_path):
    store = OutputStore(tmp_path / "outputs")
    with pytest.raises(RuntimeError), store.writing("weight") as out:
        (out / "partial.txt").write_text("half")
        raise RuntimeError("boom")
    assert store.reading("weight") == tmp_path / "outputs" / "weight"
    assert (store.failed_path("weight") / "partial.txt").read_text() == "half"
    store.commit()
    assert not (tmp_path / "outputs" / "weight").exists()


def test_a_later_successful_stage_clears_its_failed_folder(tmp_path):
    store = OutputStore(tmp_path / "outputs")
    with pytest.raises(RuntimeError), store.writing("weight"):
        raise RuntimeError("boom")
    assert store.failed_path("weight").is_dir()
    with store.writing("weight") as out:
        (out / "weights.txt").write_text("good")
    store.commit()
    assert not store.failed_path("weight").exists()
    assert (tmp_path / "outputs" / "weight" / "weights.txt").read_text() == "good"


class Intervals(pa.DataFrameModel):
    ci_lower: Series[float]
    ci_upper: Series[float]

    @pa.dataframe_check
    @classmethod
    def ordered_interval(cls, frame: pd.DataFrame) -> pd.Series:
        return frame["ci_lower"] <= frame["ci_upper"]


def test_a_frame_level_check_counts_once_per_row(tmp_path):
    frame = pd.DataFrame({"ci_lower": [0.1, 0.9], "ci_upper": [0.2, 0.5]})
    with pytest.raises(SchemaCheckError) as caught:
        write_table(frame, tmp_path / "t.parquet", Intervals)
    assert str(caught.value).count("ordered_interval") == 1
    assert "1 schema failure(s)" in str(caught.value)


def test_outputs_made_under_another_spec_are_refused(tmp_path):
    import copy

    import yaml

    from survey_pipeline.artifacts import check_spec_record, write_spec_record
    from survey_pipeline.spec import parse_spec

    raw = yaml.safe_load((artifacts.PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))
    spec = parse_spec(raw)
    write_spec_record(tmp_path, spec)
    check_spec_record(tmp_path, parse_spec(copy.deepcopy(raw)))  # same content: accepted

    changed = copy.deepcopy(raw)
    changed["indicators"][0]["dont_know"] = "exclude"
    with pytest.raises(InputError, match="another version of the questionnaire spec") as caught:
        check_spec_record(tmp_path, parse_spec(changed))
    assert caught.value.rule == "spec_version"


def test_a_session_removes_what_a_killed_run_left_and_restores_a_half_swapped_stage(tmp_path):
    outputs = tmp_path / "outputs"
    (outputs / ".staging-0123456789ab" / "validate").mkdir(parents=True)
    (outputs / ".staging-0123456789ab" / "validate" / "valid.parquet").write_text("respondent rows")
    (outputs / ".old-weight-1234abcd").mkdir()  # killed between moving weight/ aside and the new one in
    (outputs / ".old-weight-1234abcd" / "weights.txt").write_text("previous")
    (outputs / "estimate").mkdir()
    (outputs / ".old-estimate-5678abcd").mkdir()  # killed after the new estimate/ was in place
    (outputs / "manifests").mkdir()
    (outputs / "manifests" / ".old-weight.json-9abcdef0").write_text("{}")
    (outputs / ".manifest.json.tmp").write_text("{")

    with OutputStore(outputs).session("run"):
        assert sorted(p.name for p in outputs.iterdir()) == [".lock", "estimate", "manifests", "weight"]
    assert (outputs / "weight" / "weights.txt").read_text() == "previous"
    assert [p.name for p in (outputs / "manifests").iterdir()] == ["weight.json"]
    assert not (outputs / ".lock").exists()


def test_a_json_output_is_checked_against_its_contract_on_write_and_read(tmp_path):
    from survey_pipeline.artifacts import read_json, write_json
    from survey_pipeline.contracts import ValidateMetrics

    counts = {"rows_in": 10, "rows_valid": 9, "rows_quarantined": 1, "quarantined_share": 0.1}
    metrics = {"waves": {"2019": counts}, "total": counts, "reasons": {"2019": {"allowed_codes:heard": 1}}}
    write_json(metrics, tmp_path / "metrics.json", ValidateMetrics)
    assert read_json(tmp_path / "metrics.json", ValidateMetrics) == metrics

    with pytest.raises(SchemaCheckError, match=r"waves\.2019\.rows_valid.*1 more") as caught:
        write_json(
            {**metrics, "waves": {"2019": {**counts, "rows_valid": "9"}}, "extra": 1},
            tmp_path / "other.json",
            ValidateMetrics,
        )
    assert caught.value.rule == "schema:ValidateMetrics" and not (tmp_path / "other.json").exists()

    unreconciled = {**metrics, "total": {**counts, "rows_quarantined": 2}}
    (tmp_path / "metrics.json").write_text(json.dumps(unreconciled), encoding="utf-8")
    with pytest.raises(SchemaCheckError, match="total: Value error, rows_in is not rows_valid"):
        read_json(tmp_path / "metrics.json", ValidateMetrics)
