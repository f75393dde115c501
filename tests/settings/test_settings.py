"""params.yaml as typed settings (`survey_pipeline.settings`): one-line errors naming key and problem,
and the settings records stages write next to their outputs."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import shutil
from pathlib import Path
from typing import get_args

import numpy
import pytest
import yaml

from survey_pipeline import cli
from survey_pipeline.core.intervals import CI_METHODS
from survey_pipeline.errors import InputError, ParamsError
from survey_pipeline.settings import (
    RECORD,
    CIMethod,
    Params,
    WeightSettings,
    fingerprint,
    load_params,
    parse_params,
    read_record,
    recorded_software,
    upstream_settings,
    write_record,
)
from survey_pipeline.software import software_versions
from survey_pipeline.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))


def _with(key: str, value=None, *, delete: bool = False) -> dict:
    """The committed params with one (dotted) key set or deleted."""
    raw = copy.deepcopy(RAW)
    *parents, last = key.split(".")
    target = raw
    for parent in parents:
        target = target[parent]
    if delete:
        del target[last]
    else:
        target[last] = value
    return raw


def test_the_committed_params_load_with_every_section_typed():
    params = load_params(ROOT / "params.yaml")
    assert params.spec == "questionnaires/wij_monitor.yaml"
    assert params.weight.margins == ("age_group", "sex", "wijk") and params.weight.max_iter == 100
    assert params.validate_.gx_failure == "error" and params.section("validate") is params.validate_
    assert params.estimate.suppression.min_n == 30 and isinstance(params.estimate.suppression.min_n_eff, float)
    assert params.report.achieved_waves == (2019, 2020, 2021) and params.report.target_years == (2022, 2023)
    params.check_against(load_spec(ROOT / params.spec))


def test_the_interval_choices_are_the_cores():
    assert set(get_args(CIMethod)) == set(CI_METHODS)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        # the wording the bad-input corpus pins
        ("weight.max_iter", 100.0, "expected a whole number >= 1, got 100.0"),
        ("weight.max_iter", True, "expected a whole number >= 1, got True"),
        (
            "weight.tol",
            "1e-10",
            "expected a share of the sum of weights in (0, 1), got '1e-10' (YAML read it as text: "
            "remove any quotes; write an exponent with a decimal point and a sign, e.g. 1.0e-10 or "
            "1.0e+2)",
        ),
        ("weight.tol", math.nan, "expected a share of the sum of weights in (0, 1), got nan"),
        ("weight.trim_upper", 1, "expected a multiple of the mean weight in (1, inf) (or null), got 1"),
        ("weight.margins", [], "expected a non-empty list of names, got []"),
        ("weight.margins", ["sex", "sex"], "'sex' is listed twice"),
        ("weight.method", "calibrate", "must be one of rake, poststratify, got 'calibrate'"),
        ("ingest.file_pattern", "wij_panel", "expected a file name pattern with one {wave}, got 'wij_panel'"),
        ("ingest.raw_dir", "  ", "expected a folder path relative to the project root, got '  '"),
        ("validate.max_quarantine_share", 1.5, "expected a share in [0, 1], got 1.5"),
        ("estimate.level", 95, "expected a number in (0, 1), got 95"),
        ("estimate.breakdowns", ["total"], "'total' is always included; list only background variables"),
        ("estimate.suppression.min_n", 30.0, "expected a whole number >= 0, got 30.0"),
        ("estimate.suppression.min_n_eff", math.inf, "expected a number in [0, inf), got inf"),
        ("estimate.suppression", [30], "expected a mapping, got [30]"),
        ("report.year", 2022.0, "expected a whole number from 1900 to 2999, got 2022.0"),
        ("report.achieved_count", 0, "expected a whole number from 1 to 20, got 0"),
        (
            "report.exclude_waves",
            {2018: " "},
            "expected a mapping wave -> the Dutch reason it is left out of the table, got {2018: ' '}",
        ),
        ("report.decimals", 5, "expected a whole number from 0 to 3, got 5"),
        ("report.figure_formats", ["pdf"], "expected a non-empty list from png, svg, got ['pdf']"),
    ],
)
def test_a_bad_value_is_one_line_naming_key_and_problem(key, value, message):
    with pytest.raises(ParamsError) as caught:
        parse_params(_with(key, value), file="params.yaml")
    assert caught.value.key == key
    assert str(caught.value) == f"params.yaml, rule 'params': params key '{key}': {message}"


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("ingest", "missing section (expected a mapping)"),
        ("spec", "missing (expected the path of the questionnaire spec)"),
        ("weight.population_file", "missing (expected the path of the margins file)"),
        ("report.target_count", "missing (expected a whole number from 0 to 20)"),
    ],
)
def test_a_missing_key_names_what_it_expects(key, message):
    with pytest.raises(ParamsError, match=rf"params key '{key}': {re.escape(message)}$"):
        parse_params(_with(key, delete=True))


def test_unknown_keys_and_sections_list_the_known_ones():
    with pytest.raises(ParamsError) as caught:
        parse_params(_with("weight.max_iterations", 5))
    assert caught.value.key == "weight.max_iterations"
    assert str(caught.value).endswith(f"unknown key (known: {', '.join(sorted(WeightSettings.model_fields))})")
    with pytest.raises(
        ParamsError,
        match=r"params key 'colour': unknown section \(known: spec, ingest, validate, "
        r"weight, estimate, report\)",
    ):
        parse_params(_with("colour", "red"))
    with pytest.raises(ParamsError, match=r"params key '<root>': expected a mapping of sections"):
        parse_params([1, 2])


def test_post_stratification_needs_its_cells():
    raw = _with("weight.method", "poststratify")
    raw["weight"]["cells_file"] = None
    with pytest.raises(ParamsError, match="params key 'weight.cells_file': post-stratification needs"):
        parse_params(raw)
    raw = _with("weight.method", "poststratify")
    del raw["weight"]["poststratify_cells"]
    with pytest.raises(ParamsError, match=r"'weight.poststratify_cells': missing \(expected a non-empty list"):
        parse_params(raw)


def test_repeated_figure_formats_count_once():
    assert parse_params(_with("report.figure_formats", ["svg", "png", "svg"])).report.figure_formats == ("svg", "png")


def test_the_whole_file_is_checked_before_any_stage_runs(tmp_path, capsys):
    """A bad report section (or a breakdown the spec lacks) stops even `ingest`, before it reads any data."""
    (tmp_path / "questionnaires").mkdir()
    shutil.copy(ROOT / "questionnaires" / "wij_monitor.yaml", tmp_path / "questionnaires")
    for key, value, problem in (
        ("report.decimals", 5, "expected a whole number from 0 to 3, got 5"),
        ("estimate.breakdowns", ["income"], "'income' is not a background variable"),
    ):
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(_with(key, value)), encoding="utf-8")
        capsys.readouterr()
        assert cli.main(["--project-dir", str(tmp_path), "--quiet", "ingest"]) == 2
        assert capsys.readouterr().err.startswith(
            f"survey-pipeline: error: {tmp_path / 'params.yaml'}, rule 'params': params key '{key}': {problem}"
        )
        assert not (tmp_path / "outputs" / "ingest").exists()


# ---------------------------------------------------------------------------
# Settings records


def _params(**estimate) -> Params:
    return parse_params(_with("estimate", {**RAW["estimate"], **estimate}))


def test_a_record_holds_the_sections_and_the_sha256_of_their_canonical_json(tmp_path):
    params = _params()
    write_record(tmp_path, {"weight": params.weight, "estimate": params.estimate})
    record = json.loads((tmp_path / RECORD).read_text(encoding="utf-8"))
    assert list(record["sections"]) == ["estimate", "weight"]
    assert record["sections"]["estimate"]["suppression"]["min_n"] == 30
    canonical = json.dumps(record["sections"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert record["fingerprint"] == fingerprint(record["sections"]) == hashlib.sha256(canonical.encode()).hexdigest()
    assert read_record(tmp_path, "estimate") == {"estimate": params.estimate, "weight": params.weight}


def test_a_record_that_is_missing_altered_or_foreign_is_refused(tmp_path):
    with pytest.raises(InputError, match="missing stage output; run the estimate stage first"):
        read_record(tmp_path / "estimate", "estimate")
    with pytest.raises(InputError, match=f"{tmp_path} has no record of the settings it was made with; rerun"):
        read_record(tmp_path, "estimate")
    write_record(tmp_path, {"estimate": _params().estimate})
    record = json.loads((tmp_path / RECORD).read_text(encoding="utf-8"))
    record["sections"]["estimate"]["ci_method"] = "logit"
    (tmp_path / RECORD).write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(InputError, match="does not match its fingerprint; rerun the estimate stage"):
        read_record(tmp_path, "estimate")
    record["sections"] = {"colour": {"red": 1}}
    record["fingerprint"] = fingerprint(record["sections"])
    (tmp_path / RECORD).write_text(json.dumps(record), encoding="utf-8")
    with pytest.raises(InputError, match="not one this version writes"):
        read_record(tmp_path, "estimate")
    write_record(tmp_path, {"estimate": _params().estimate})
    older = json.loads((tmp_path / RECORD).read_text(encoding="utf-8"))
    del older["software"]  # as written before records named the software
    (tmp_path / RECORD).write_text(json.dumps(older), encoding="utf-8")
    with pytest.raises(InputError, match="not one this version writes; rerun the estimate stage"):
        read_record(tmp_path, "estimate")


def test_a_record_names_the_software_of_its_stage_and_of_its_upstream_stages(tmp_path):
    params = _params()
    (tmp_path / "weight").mkdir()
    (tmp_path / "estimate").mkdir()
    write_record(tmp_path / "weight", {"weight": params.weight})
    upstream = recorded_software({"weight": tmp_path / "weight"})
    write_record(tmp_path / "estimate", {"weight": params.weight, "estimate": params.estimate}, upstream)
    software = recorded_software({"estimate": tmp_path / "estimate"})
    assert set(software) == {"weight", "estimate"}  # the stage's own section is the last one written
    assert software["estimate"] == software_versions()
    assert software["estimate"]["packages"]["numpy"] == numpy.__version__


def test_upstream_settings_come_from_the_records_and_must_match_the_params(tmp_path):
    made_with = _params()
    weight_dir, estimate_dir = tmp_path / "weight", tmp_path / "estimate"
    for folder in (weight_dir, estimate_dir):
        folder.mkdir()
    write_record(weight_dir, {"weight": made_with.weight})
    write_record(estimate_dir, {"weight": made_with.weight, "estimate": made_with.estimate})
    folders = {"weight": weight_dir, "estimate": estimate_dir}
    assert upstream_settings(folders, made_with) == {"weight": made_with.weight, "estimate": made_with.estimate}

    changed = _params(suppression={**RAW["estimate"]["suppression"], "min_n": 50})
    with pytest.raises(InputError) as caught:
        upstream_settings(folders, changed)
    assert caught.value.rule == "upstream_settings" and caught.value.file == str(estimate_dir / RECORD)
    assert caught.value.message == (
        f"estimate.suppression.min_n is 50 in params.yaml but {estimate_dir} was made with 30; rerun the estimate stage"
    )
    with pytest.raises(
        InputError,
        match=r"estimate.breakdowns is \['sex'\] in params.yaml but .*/estimate was "
        r"made with \['wijk', 'age_group', 'sex'\]",
    ):
        upstream_settings(folders, _params(breakdowns=["sex"]))


def test_a_record_does_not_depend_on_how_the_params_were_written(tmp_path):
    """Defaults written out or left to the model, ints where floats go: the same settings, the same record."""
    explicit = _params()
    small_area = {
        key: value
        for key, value in RAW["estimate"]["small_area"].items()  # not its defaults
        if key in ("enabled", "covariates")
    }
    implicit = parse_params(
        _with(
            "estimate",
            {
                "breakdowns": RAW["estimate"]["breakdowns"],
                "suppression": {"min_n_eff": 30, "flag_df_below": 8},
                "small_area": small_area,
                "registrations_file": RAW["estimate"]["registrations_file"],  # not a default
            },
        )
    )
    assert implicit.estimate == explicit.estimate
    for name, params in (("a", explicit), ("b", implicit)):
        (tmp_path / name).mkdir()
        write_record(tmp_path / name, {"estimate": params.estimate})
    assert (tmp_path / "a" / RECORD).read_bytes() == (tmp_path / "b" / RECORD).read_bytes()
