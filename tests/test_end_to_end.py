"""The whole pipeline on a small generated panel, checked against hand computations."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyreadstat
import pytest
import yaml

from survey_pipeline import cli
from survey_pipeline.demo import write_demo
from survey_pipeline.spec import load_spec

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A project with a 400-per-wave synthetic panel, after `survey-pipeline run`."""
    project = tmp_path_factory.mktemp("project")
    (project / "questionnaires").mkdir()
    shutil.copy(ROOT / "questionnaires" / "wij_monitor.yaml", project / "questionnaires")
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    # 400 respondents over 30 wijken leave cells too sparse for the demo's trimming bounds.
    params["weight"].update(trim_lower=None, trim_upper=None)
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    spec = load_spec(project / "questionnaires" / "wij_monitor.yaml")
    write_demo(spec, project / "data" / "raw", project / "data" / "population", n_per_wave=400, seed=7)
    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 0
    return project


def _weighted_rows(project: Path, wave: int) -> pd.DataFrame:
    valid = pd.read_parquet(project / "outputs" / "validate" / "valid.parquet")
    weights = pd.read_parquet(project / "outputs" / "weight" / "weights.parquet")
    return valid[valid["wave"] == wave].merge(weights, on=["resp_id", "wave"], how="inner")


def _published(project: Path, indicator: str, wave: int) -> pd.Series:
    table = pd.read_parquet(project / "outputs" / "estimate" / "indicators.parquet")
    row = table[(table["indicator_id"] == indicator) & (table["wave"] == wave) & (table["breakdown"] == "total")]
    assert len(row) == 1
    return row.iloc[0]


def test_every_input_row_is_valid_or_quarantined(finished_run):
    metrics = json.loads((finished_run / "outputs" / "validate" / "metrics.json").read_text())
    quarantine = pd.read_parquet(finished_run / "outputs" / "validate" / "quarantine.parquet")
    valid = pd.read_parquet(finished_run / "outputs" / "validate" / "valid.parquet")
    for wave in (2019, 2020, 2021):
        rows_in = pyreadstat.read_sav(str(finished_run / "data" / "raw" / f"wij_panel_{wave}.sav"), metadataonly=True)[
            1
        ].number_rows
        counts = metrics["waves"][str(wave)]
        assert counts["rows_in"] == rows_in
        assert counts["rows_valid"] == (valid["wave"] == wave).sum()
        assert counts["rows_quarantined"] == (quarantine["file_wave"] == wave).sum()
        assert counts["rows_valid"] + counts["rows_quarantined"] == rows_in


def test_weights_reproduce_the_population_margins(finished_run):
    margins = pd.read_csv(finished_run / "data" / "population" / "margins.csv")
    for wave in (2019, 2020, 2021):
        rows = _weighted_rows(finished_run, wave)
        for variable in ("age_group", "sex", "wijk"):
            target = margins[(margins["wave"] == wave) & (margins["variable"] == variable)].set_index("code")["count"]
            achieved = rows.groupby(rows[variable].astype(int))["weight"].sum()
            np.testing.assert_allclose(achieved.reindex(target.index).to_numpy(), target.to_numpy(), rtol=1e-6)


def test_heard_is_the_weighted_share_over_all_residents_with_a_valid_answer(finished_run):
    rows = _weighted_rows(finished_run, 2019)
    base = rows[rows["heard"].isin([1, 2, 99])]  # "weet niet" counts as not heard; 98 leaves the base
    expected = base.loc[base["heard"] == 1, "weight"].sum() / base["weight"].sum()
    published = _published(finished_run, "heard", 2019)
    assert published["estimate"] == pytest.approx(expected, rel=1e-12)
    assert published["n"] == len(base)
    assert published["sum_weights"] == pytest.approx(base["weight"].sum(), rel=1e-12)
    assert published["ci_lower"] < published["estimate"] < published["ci_upper"]


def test_contact_is_computed_over_those_who_heard(finished_run):
    rows = _weighted_rows(finished_run, 2020)
    base = rows[(rows["heard"] == 1) & rows["contact"].isin([1, 2])]  # "weet niet" excluded per the spec
    expected = base.loc[base["contact"] == 1, "weight"].sum() / base["weight"].sum()
    published = _published(finished_run, "contact_of_heard", 2020)
    assert published["estimate"] == pytest.approx(expected, rel=1e-12)
    assert published["base_text"] == "van de bewoners die (wel eens) gehoord hebben van WIJ Groningen"


def test_contact_of_all_residents_counts_those_routed_past_as_no(finished_run):
    rows = _weighted_rows(finished_run, 2021)
    heard_known = rows["heard"].isin([1, 2, 99])
    routed_past = heard_known & (rows["contact"] == -1)
    answered = (rows["heard"] == 1) & rows["contact"].isin([1, 2])
    base = rows[routed_past | answered]
    expected = base.loc[base["contact"] == 1, "weight"].sum() / base["weight"].sum()
    assert _published(finished_run, "contact_of_residents", 2021)["estimate"] == pytest.approx(expected, rel=1e-12)


def test_weighted_spss_files_reproduce_every_published_total(finished_run):
    """SPSS users get the published percentage as the weighted mean of an `ind_<id>` variable."""
    spec = load_spec(finished_run / "questionnaires" / "wij_monitor.yaml")
    compared = 0
    for wave in (2019, 2020, 2021):
        frame, _ = pyreadstat.read_sav(str(finished_run / "outputs" / "weight" / "sav" / f"{wave}.sav"))
        for indicator in spec.indicators:
            if wave not in spec.variables[indicator.variable].waves:
                assert f"ind_{indicator.id}" not in frame
                continue
            published = _published(finished_run, indicator.id, wave)
            if published["suppressed"]:
                continue
            outcome = frame[f"ind_{indicator.id}"]
            for weight in ("weight", "weight_norm"):
                used = outcome.notna() & frame[weight].notna()
                share = (outcome[used] * frame.loc[used, weight]).sum() / frame.loc[used, weight].sum()
                assert share == pytest.approx(published["estimate"], rel=1e-9), (indicator.id, wave, weight)
            assert (outcome.notna() & frame["weight"].notna()).sum() == published["n"]
            compared += 1
    assert compared >= 20


def test_outputs_carry_no_microdata(finished_run):
    for stage in ("estimate", "report"):
        for path in (finished_run / "outputs" / stage).rglob("*.parquet"):
            assert "resp_id" not in pd.read_parquet(path).columns, path


def test_manifest_reconciles_and_names_inputs(finished_run):
    manifest = json.loads((finished_run / "outputs" / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"ingest", "validate", "weight", "estimate", "report"}
    # every data file a stage reads (the stage graph's data dependencies), the covariates too
    assert {
        "data/raw/wij_panel_2019.sav",
        "data/raw/receipt.csv",
        "data/population/margins.csv",
        "data/population/wijk_covariates.csv",
    } <= set(manifest["inputs"])


def test_each_stage_writes_only_what_the_stage_graph_declares(finished_run):
    """dvc.yaml tracks the declared outputs: a file a stage writes undeclared would escape DVC."""
    from survey_pipeline.stage_graph import STAGES, declared_outputs

    for stage in STAGES:
        written = {path.name for path in (finished_run / "outputs" / stage.name).iterdir()}
        declared = declared_outputs(stage)
        if "." in declared:
            continue
        assert written == declared, stage.name


def _stage_digests(outputs: Path) -> dict[str, str]:
    """sha256 of every file in the stage folders, except GX's own Data Docs (they carry GX's run time)."""
    return {
        path.relative_to(outputs).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for stage in ("ingest", "validate", "weight", "estimate", "report")
        for path in sorted((outputs / stage).rglob("*"))
        if path.is_file() and "gx_data_docs" not in path.relative_to(outputs).parts
    }


def test_a_second_identical_run_writes_the_same_bytes_and_takes_every_figure_from_the_cache(finished_run, monkeypatch):
    from survey_pipeline.stages.report import figures

    outputs = finished_run / "outputs"
    before = _stage_digests(outputs)
    assert any(name.startswith("report/figures/") for name in before)
    assert "validate/data_docs/index.html" in before  # the validation page has no run time or random ids

    def no_drawing(plan, paths):
        raise AssertionError(f"figure {plan.stem} was drawn again")

    monkeypatch.setattr(figures, "draw", no_drawing)
    assert cli.main(["--project-dir", str(finished_run), "--quiet", "run"]) == 0
    assert _stage_digests(outputs) == before
    # the cache (outside the swapped stage folders) holds this report's figures and nothing else
    cached = sorted(p.suffix for p in (outputs / ".cache" / "figures").iterdir())
    assert cached == sorted(Path(name).suffix for name in before if name.startswith("report/figures/"))


# The whole run in a fresh interpreter; did its main process import great_expectations?
RUN_REPORTING_GX_IMPORT = """
import json, sys
from survey_pipeline import cli
code = cli.main(["--project-dir", sys.argv[1], "--quiet", "run"])
print(json.dumps({"exit": code, "gx_imported": "great_expectations" in sys.modules}))
"""


def test_gx_level_off_runs_the_whole_pipeline_without_importing_great_expectations(finished_run, tmp_path):
    project = tmp_path / "project"
    for name in ("data", "questionnaires"):
        shutil.copytree(finished_run / name, project / name)
    params = yaml.safe_load((finished_run / "params.yaml").read_text(encoding="utf-8"))
    params["validate"]["gx_level"] = "off"
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", RUN_REPORTING_GX_IMPORT, str(project)], capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"exit": 0, "gx_imported": False}
    outputs = project / "outputs"
    assert not (outputs / "validate" / "gx_result.json").exists()
    checks = json.loads((outputs / "report" / "checks.json").read_text(encoding="utf-8"))
    assert checks["gx_level"] == "off" and checks["expectations"] == []
    # the published numbers do not depend on the level
    for name in ("indicators", "changes", "distributions"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(outputs / "report" / f"{name}.parquet"),
            pd.read_parquet(finished_run / "outputs" / "report" / f"{name}.parquet"),
        )


def _copy_inputs(finished_run: Path, project: Path) -> None:
    for name in ("data", "questionnaires"):
        shutil.copytree(finished_run / name, project / name)
    shutil.copy(finished_run / "params.yaml", project / "params.yaml")


def test_at_gx_level_full_the_run_leaves_great_expectations_to_its_worker_with_the_same_bytes(finished_run, tmp_path):
    project = tmp_path / "project"
    _copy_inputs(finished_run, project)
    done = subprocess.run(
        [sys.executable, "-c", RUN_REPORTING_GX_IMPORT, str(project)], capture_output=True, text=True, check=True
    )
    # imported (~3 s) and checked in the worker process, beside the stages (survey_pipeline.gx_process)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"exit": 0, "gx_imported": False}
    outputs = project / "outputs"
    digests = _stage_digests(outputs)
    assert digests == _stage_digests(finished_run / "outputs")
    assert "validate/gx_result.json" in digests and (outputs / "validate" / "gx_data_docs" / "index.html").is_file()
    recorded = json.loads((outputs / "manifest.json").read_text(encoding="utf-8"))["stages"]["validate"]["counts"]
    assert recorded["gx_success"] is True and recorded["gx_failed"] == 0 and recorded["gx_expectations"] > 0
    # the validate stage alone runs its checkpoint in its own process: the same files
    assert cli.main(["--project-dir", str(project), "--quiet", "validate"]) == 0
    assert _stage_digests(outputs) == digests


def test_tables_the_run_reads_back_without_checking_them_again_are_what_the_check_returns(
    finished_run, tmp_path, monkeypatch
):
    """A table that `run` checked and wrote is read by the next stage without a second check
    (artifacts.read_table); that check would have returned the very frame read, dtypes included."""
    from survey_pipeline import artifacts

    project = tmp_path / "project"
    _copy_inputs(finished_run, project)
    skipped: list[str] = []
    differing: list[str] = []
    checked_when_written = artifacts._checked_when_written

    def verified(path, content, identity, columns, contract, spec):
        if not checked_when_written(path, content, identity, columns, contract, spec):
            return False
        skipped.append(path.name)
        frame = pd.read_parquet(io.BytesIO(content))
        try:
            checked = artifacts.check_table(frame.copy(), contract, file=str(path), spec=spec)
            pd.testing.assert_frame_equal(checked, frame, check_exact=True)
        except AssertionError as exc:
            differing.append(f"{path.name}: {exc}")
        return True

    monkeypatch.setattr(artifacts, "_checked_when_written", verified)
    assert cli.main(["--project-dir", str(project), "--quiet", "run"]) == 0
    assert differing == []
    assert {"responses.parquet", "valid.parquet", "weights.parquet", "indicators.parquet", "means.parquet"} <= set(
        skipped
    )
    assert _stage_digests(project / "outputs") == _stage_digests(finished_run / "outputs")


def failing_checkpoint(frame, spec, docs_dir=None) -> dict:
    """A checkpoint with one expectation failed; module level, so that it reaches the GX worker."""
    return {
        "success": False,
        "statistics": {
            "evaluated_expectations": 1,
            "successful_expectations": 0,
            "unsuccessful_expectations": 1,
            "raised_exceptions": 0,
        },
        "expectations": [
            {
                "suite": "responses",
                "name": "routed_to:walk_in",
                "rule": "routed_to",
                "variable": "walk_in",
                "expectation": "expect_column_values_to_not_be_in_set",
                "kwargs": {"column": "walk_in", "value_set": [-1]},
                "row_condition": None,
                "success": False,
                "raised_exception": False,
                "exception_message": None,
                "element_count": 10,
                "unexpected_count": 1,
            }
        ],
    }


def test_a_failed_checkpoint_in_the_worker_stops_the_run_before_the_report_stages_anything_and_commits_nothing(
    finished_run, tmp_path, monkeypatch, capsys
):
    from survey_pipeline.stages.validate import expectations

    project = tmp_path / "project"
    _copy_inputs(finished_run, project)
    monkeypatch.setattr(expectations, "run_checkpoint", failing_checkpoint)  # the forked worker inherits it
    assert cli.main(["--project-dir", str(project), "run"]) == 2
    err = capsys.readouterr().err
    assert "survey-pipeline: error: " in err
    assert "the great-expectations checkpoint failed 1 of 1 expectation(s) on the valid rows: routed_to:walk_in" in err
    assert "report ..." in err  # the report starts beside the checkpoint; it waits for it before staging
    outputs = project / "outputs"
    # nothing committed, no figure cache, no scratch folder of the report's background work
    assert sorted(p.name for p in outputs.iterdir()) == ["failed"]
    kept = outputs / "failed" / "validate"
    assert json.loads((kept / "gx_result.json").read_text(encoding="utf-8"))["success"] is False
    assert (kept / "data_docs" / "index.html").is_file()


def test_agree_scale_shares_match_the_published_indicator_and_fill_its_base(finished_run):
    """The footnote's shares come from the distributions; over the indicator's base they reproduce the published
    percentage and, with "(helemaal) niet mee eens" and "neutraal"/"weet niet", make up the whole base."""
    from survey_pipeline.stages.report.agree_scale import AgreeShares, agree_indicators, agree_shares

    spec = load_spec(finished_run / "questionnaires" / "wij_monitor.yaml")
    distributions = pd.read_parquet(finished_run / "outputs" / "report" / "distributions.parquet")
    checked = 0
    for indicator in agree_indicators(spec):
        for wave in spec.variables[indicator.variable].waves:
            found = agree_shares(distributions, spec, indicator, wave)
            if not isinstance(found, AgreeShares):
                continue  # a share the sentence needs is suppressed at this sample size
            published = _published(finished_run, indicator.id, wave)
            assert found.agree == pytest.approx(float(published["estimate"]), abs=1e-9)
            assert found.agree + found.disagree + found.neutral == pytest.approx(1.0, abs=1e-12)
            checked += 1
    assert checked


def test_the_method_note_reports_the_run_s_response_and_software(finished_run):
    spec = load_spec(finished_run / "questionnaires" / "wij_monitor.yaml")
    metrics = json.loads((finished_run / "outputs" / "validate" / "metrics.json").read_text())
    note = (finished_run / "outputs" / "report" / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    for wave in spec.waves:
        invited, responded = spec.method.waves[wave].invited, metrics["waves"][str(wave)]["rows_in"]
        rate = f"{100 * responded / invited:.1f}".replace(".", ",")
        assert f"| {responded} | {rate}% |" in note
    record = json.loads((finished_run / "outputs" / "estimate" / "settings.json").read_text())
    assert set(record["software"]) == {"ingest", "validate", "weight", "estimate"}
    numpy = record["software"]["estimate"]["packages"]["numpy"]
    assert f"numpy {numpy}" in note


# Outputs whose schema is not named `<stage>_<file stem>` (schemas/tables/) or is shared.
TABLE_SCHEMAS = {"estimate/sae": "estimate_sae", "report/wijkcijfers": "report_small_area"}
JSON_SCHEMAS = {
    "ingest/files": "ingest_files",
    "validate/metrics": "validate_metrics",
    "validate/gx_result": "validate_gx_result",
    "weight/metrics": "weight_metrics",
    "estimate/spec": "estimate_spec",
    "report/checks": "report_checks",
}


def test_every_json_output_and_table_meets_its_schema_in_schemas(finished_run):
    """The shipped JSON Schemas describe what a run writes (tables: each row as JSON, NaN as null)."""
    from importlib.resources import files

    import jsonschema

    schemas = files("survey_pipeline.schemas")

    def validator(kind: str, name: str) -> jsonschema.Draft202012Validator:
        text = (schemas / kind / f"{name}.schema.json").read_text(encoding="utf-8")
        return jsonschema.Draft202012Validator(json.loads(text))

    outputs = finished_run / "outputs"
    checked = 0
    for path in sorted(outputs.glob("*/*.json")):
        key = f"{path.parent.name}/{path.stem}"
        name = "settings" if path.name == "settings.json" else JSON_SCHEMAS.get(key)
        name = name or ("stage_manifest" if path.parent.name == "manifests" else None)
        assert name is not None, key
        assert list(validator("json", name).iter_errors(json.loads(path.read_text(encoding="utf-8")))) == [], key
        checked += 1
    run_manifest = json.loads((outputs / "manifest.json").read_text(encoding="utf-8"))
    assert list(validator("json", "run_manifest").iter_errors(run_manifest)) == []
    for path in sorted(outputs.glob("*/*.parquet")):
        key = f"{path.parent.name}/{path.stem}"
        rows = json.loads(pd.read_parquet(path).head(200).to_json(orient="records"))
        check = validator("tables", TABLE_SCHEMAS.get(key, key.replace("/", "_")))
        assert [error.message for row in rows for error in check.iter_errors(row)][:3] == [], key
        checked += 1
    assert checked >= 25


def test_registration_figures_reach_every_deliverable(finished_run):
    """The demo's synthetic registrations file -> estimate table -> annual table, target table, workbook, method note."""
    source = pd.read_csv(finished_run / "data" / "registrations" / "registrations.csv", dtype=str)
    table = pd.read_parquet(finished_run / "outputs" / "estimate" / "registrations.parquet")
    assert len(table) == len(source) and set(table["source"]) == {"synthetisch (demo)"}
    report = finished_run / "outputs" / "report"
    html = (report / "jaarverslag.html").read_text(encoding="utf-8")
    row = html.split('data-indicator="entree_requests"')[1].split("</tr>")[0]
    cells = [cell.split("<")[0] for cell in row.split('<td class="num">')[1:]]
    assert cells == ["35.812", "31.406", "28.153", "kengetal", "kengetal"]  # no interval, Dutch separators
    assert '<sup class="note">' in row and "het betreft hier niet unieke personen</li>" in html
    share_row = html.split('data-indicator="entree_own_network"')[1].split("</tr>")[0]
    assert [cell.split("<")[0] for cell in share_row.split('<td class="num">')[1:]][:3] == ["-", "36%", "38%"]
    assert "<td>n.v.t. (registratie)</td><td>n.v.t.</td><td>gehaald</td>" in html  # >35% in 2021, on the value
    book = pd.read_excel(report / "tabellen.xlsx", sheet_name="Registraties")
    assert book["Aantal"].dropna().astype(int).tolist() == [
        int(v) for v in source.loc[source["unit"] == "count", "value"]
    ]
    note = (report / "onderzoeksverantwoording.md").read_text(encoding="utf-8")
    assert "Registratiecijfers" in note and "synthetisch (demo)" in note


def test_the_report_has_the_verdieping_section_of_the_spec_analyses(finished_run):
    """The spec's analyses reach the annual report: the section, every title, the forest plot."""
    spec = load_spec(finished_run / "questionnaires" / "wij_monitor.yaml")
    report = finished_run / "outputs" / "report"
    html = (report / "jaarverslag.html").read_text(encoding="utf-8")
    markdown = (report / "jaarverslag.md").read_text(encoding="utf-8")
    assert 'id="verdieping"' in html and "## Verdieping" in markdown
    for analysis in spec.analyses:
        assert f"### {analysis.title}" in markdown.replace("\\", "")
    assert (report / "figures" / "odds_not_heard.svg").is_file()
    assert 'src="figures/odds_not_heard.svg"' in html
    tables = finished_run / "outputs" / "estimate" / "analyses"
    assert sorted(p.stem for p in tables.glob("*.parquet")) == sorted(
        ["area_vs_rest", "crosstab_tests", "crosstabs", "means", "odds_ratios", "trends"]
    )
