"""Schema-checked tables and the staged output store."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
import pytest

from survey_pipeline import artifacts
from survey_pipeline.artifacts import OutputStore, SchemaCheckError, read_table, write_table
from survey_pipeline.errors import InputError


@pytest.fixture()
def share_schema(tmp_path, monkeypatch) -> str:
    schema = pa.DataFrameSchema(
        {"wave": pa.Column("int64"), "estimate": pa.Column("float64", pa.Check.in_range(0, 1))}, strict=True
    )
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "test_shares.yaml").write_text(schema.to_yaml())
    monkeypatch.setattr(artifacts, "SCHEMA_DIR", tmp_path / "schemas")
    artifacts._load_schema.cache_clear()
    yield "test_shares"
    artifacts._load_schema.cache_clear()


def test_survey_columns_in_a_schema_are_named_by_the_spec(tmp_path, monkeypatch):
    import copy

    import yaml

    from survey_pipeline.spec import parse_spec

    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "rows.yaml").write_text(
        "schema_type: dataframe\ncolumns:\n"
        "  <respondent_id>: {dtype: int64}\n  <wave_variable>: {dtype: int64}\n"
        "  breakdown: {dtype: str, checks: {isin: [total, <background>]}}\n"
        "  ^(?!<respondent_id>$|<wave_variable>$|breakdown$).+$: {dtype: float64, regex: true}\n"
        "unique: [<respondent_id>, <wave_variable>]\n"
    )
    monkeypatch.setattr(artifacts, "SCHEMA_DIR", tmp_path / "schemas")
    raw = yaml.safe_load((artifacts.PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))
    raw = copy.deepcopy(raw)
    raw["survey"].update(respondent_id="nr.panel", wave_variable="jaar")
    spec = parse_spec(raw)
    frame = pd.DataFrame({"nr.panel": [1, 2], "jaar": [2019, 2019], "breakdown": ["total", "wijk"], "heard": [1.0, 2.0]})
    assert artifacts.check_table(frame, "rows", file="f", spec=spec) is not None
    with pytest.raises(SchemaCheckError, match="breakdown: isin"):  # the list holds the spec's background variables
        artifacts.check_table(frame.assign(breakdown=["total", "buurt"]), "rows", file="f", spec=spec)
    with pytest.raises(SchemaCheckError, match="nr.panel"):  # the regex column excludes the id: its dtype rules
        artifacts.check_table(frame.assign(**{"nr.panel": [1.5, 2.5]}), "rows", file="f", spec=spec)
    with pytest.raises(ValueError, match="check it with the spec"):
        artifacts.load_schema("rows")


def test_table_round_trip(tmp_path, share_schema):
    frame = pd.DataFrame({"wave": [2019, 2020], "estimate": [0.78, 0.81]})
    write_table(frame, tmp_path / "t.parquet", share_schema)
    pd.testing.assert_frame_equal(read_table(tmp_path / "t.parquet", share_schema), frame)


def test_write_refuses_a_table_that_breaks_its_schema(tmp_path, share_schema):
    frame = pd.DataFrame({"wave": [2019, 2020], "estimate": [0.78, 1.2]})
    with pytest.raises(SchemaCheckError) as caught:
        write_table(frame, tmp_path / "t.parquet", share_schema)
    assert "estimate" in str(caught.value) and "row 1" in str(caught.value)
    assert not (tmp_path / "t.parquet").exists()


def test_read_refuses_a_tampered_table(tmp_path, share_schema):
    pd.DataFrame({"wave": [2019], "estimate": [0.5], "respondent": [17]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(SchemaCheckError, match="respondent"):
        read_table(tmp_path / "t.parquet", share_schema)


def test_missing_stage_input_names_the_file(tmp_path, share_schema):
    with pytest.raises(InputError, match="run the earlier stage first"):
        read_table(tmp_path / "absent.parquet", share_schema)


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
    with pytest.raises(RuntimeError):
        with store.writing("weight") as out:
            (out / "partial.txt").write_text("half")
            raise RuntimeError("boom")
    assert store.reading("weight") == tmp_path / "outputs" / "weight"
    assert (store.failed_path("weight") / "partial.txt").read_text() == "half"
    store.commit()
    assert not (tmp_path / "outputs" / "weight").exists()


def test_a_later_successful_stage_clears_its_failed_folder(tmp_path):
    store = OutputStore(tmp_path / "outputs")
    with pytest.raises(RuntimeError):
        with store.writing("weight"):
            raise RuntimeError("boom")
    assert store.failed_path("weight").is_dir()
    with store.writing("weight") as out:
        (out / "weights.txt").write_text("good")
    store.commit()
    assert not store.failed_path("weight").exists()
    assert (tmp_path / "outputs" / "weight" / "weights.txt").read_text() == "good"


def test_a_frame_level_check_counts_once_per_row(tmp_path, monkeypatch):
    schema = pa.DataFrameSchema(
        {"ci_lower": pa.Column("float64"), "ci_upper": pa.Column("float64")},
        checks=[pa.Check(lambda frame: frame["ci_lower"] <= frame["ci_upper"], name="ordered_interval")],
    )
    monkeypatch.setattr(artifacts, "load_schema", lambda name, spec=None: schema)
    frame = pd.DataFrame({"ci_lower": [0.1, 0.9], "ci_upper": [0.2, 0.5]})
    with pytest.raises(SchemaCheckError) as caught:
        write_table(frame, tmp_path / "t.parquet", "intervals")
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
