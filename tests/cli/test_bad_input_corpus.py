"""Bad-input corpus through the real CLI: numbers, params and receipts that must stop a run.

Each case damages one input (population files, params.yaml, the spec, the receipt)
of a project whose previous run succeeded, runs one stage and asserts the exact
outcome: exit code 2, one line on stderr naming the file (and row and column where
the input has them) and the problem, and the previous outputs byte for byte as they
were. The rows of the successful run are reconciled with what each file declares.
"""

from __future__ import annotations

import fnmatch
import shutil
import struct
from pathlib import Path

import pyreadstat
import pytest
import yaml

from survey_pipeline import cli
from survey_pipeline.demo import write_demo
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.ingest.sav_structure import HEADER_SIZE, NCASES_OFFSET

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A small demo project after a successful ingest, validate and weight."""
    project = tmp_path_factory.mktemp("finished")
    (project / "questionnaires").mkdir()
    shutil.copy(ROOT / "questionnaires" / "wij_monitor.yaml", project / "questionnaires")
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    # 300 respondents a wave: too few for every wijk and for the trimming bounds.
    params["weight"].update(margins=["age_group", "sex"], trim_lower=None, trim_upper=None)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    spec = load_spec(project / "questionnaires" / "wij_monitor.yaml")
    write_demo(spec, project / "data" / "raw", project / "data" / "population", n_per_wave=300, seed=11)
    for verb in ("ingest", "validate", "weight"):
        assert cli.main(["--project-dir", str(project), "--quiet", verb]) == 0
    return project


@pytest.fixture
def project(finished, tmp_path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(finished, copy)
    return copy


def _outputs(project: Path) -> dict[Path, bytes]:
    return {p.relative_to(project): p.read_bytes() for p in sorted((project / "outputs").rglob("*")) if p.is_file()}


REGISTRATIONS = "data/registrations/registrations.csv"  # params.yaml estimate.registrations_file


def _replace_line(path: Path, line: int, new: str) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[line - 1] = new
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _count(text: str):
    """Margins data row 1 (line 2) with `text` as its count (quoted as a CSV export would)."""

    def damage(project: Path) -> None:
        path = project / "data" / "population" / "margins.csv"
        first = path.read_text(encoding="utf-8").splitlines()[1].rsplit(",", 1)[0]
        _replace_line(path, 2, f'{first},"{text}"')

    return damage


def _unquoted_count(text: str, file: str = "margins.csv"):
    """Data row 1 (line 2) of a population file with `text` as its count, unquoted (the row gains a field)."""

    def damage(project: Path) -> None:
        path = project / "data" / "population" / file
        first = path.read_text(encoding="utf-8").splitlines()[1].rsplit(",", 1)[0]
        _replace_line(path, 2, f"{first},{text}")

    return damage


def _poststratified(damage):
    def both(project: Path) -> None:
        _params("  method: rake", "  method: poststratify")(project)
        damage(project)

    return both


def _params(old: str, new: str):
    def damage(project: Path, path: Path | None = None) -> None:
        path = path or project / "params.yaml"
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")

    return damage


def _spec(old: str, new: str):
    def damage(project: Path) -> None:
        _params(old, new)(project, project / "questionnaires" / "wij_monitor.yaml")

    return damage


def _receipt(rows: dict[int, str] | None = None):
    """A receipt listing every wave with its true row count, except the `rows` given."""

    def damage(project: Path) -> None:
        raw = project / "data" / "raw"
        lines = ["wave,expected_respondents,source"]
        for wave in (2019, 2020, 2021):
            n = pyreadstat.read_sav(str(raw / f"wij_panel_{wave}.sav"), metadataonly=True)[1].number_rows
            lines.append(f'{wave},"{(rows or {}).get(wave, n)}",test')
        (raw / "receipt.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    return damage


COUNT = "margins.csv, row 2, column 'count', rule 'population_file': "
SEPARATOR = (
    "a thousands separator or decimal mark in a whole number: '.' and ',' mean different things in Dutch "
    "and English exports; write digits only"
)
CASES = {
    "count 75.826": ("weight", _count("75.826"), COUNT + SEPARATOR + ", got '75.826'"),
    "count 75,826": ("weight", _count("75,826"), COUNT + SEPARATOR + ", got '75,826'"),
    "count 1.234.567": ("weight", _count("1.234.567"), COUNT + SEPARATOR + ", got '1.234.567'"),
    "count 7,5e3": ("weight", _count("7,5e3"), COUNT + "a comma in a whole number: write digits only, got '7,5e3'"),
    "count ' 12 '": (
        "weight",
        _count(" 12 "),
        COUNT + "spaces around the value (expected a whole number, digits only), got ' 12 '",
    ),
    # pandas would take the first column as the row index and shift every column of the file by one.
    "count 75,826 unquoted": (
        "weight",
        _unquoted_count("75,826"),
        "margins.csv, row 2, rule 'population_file': malformed CSV: the row has 6 fields but the header has 5; "
        "a separator inside an unquoted value or at the end of the row?",
    ),
    "margins row without its count": (
        "weight",
        lambda project: _replace_line(project / "data" / "population" / "margins.csv", 3, "2019,age_group,2,x"),
        "margins.csv, row 3, rule 'population_file': malformed CSV: the row has 4 fields but the header has 5; "
        "a separator is missing or the file is damaged",
    ),
    "cells count 6,045 unquoted": (
        "weight",
        _poststratified(_unquoted_count("6,045", "cells.csv")),
        "cells.csv, row 2, rule 'population_file': malformed CSV: the row has 6 fields but the header has 5; "
        "a separator inside an unquoted value or at the end of the row?",
    ),
    "cells count 6.045": (
        "weight",
        _poststratified(_unquoted_count("6.045", "cells.csv")),
        "cells.csv, row 2, column 'count', rule 'population_file': " + SEPARATOR + ", got '6.045'",
    ),
    "duplicate params key": (
        "weight",
        _params("  max_iter: 100", "  max_iter: 100\n  max_iter: 5"),
        "params.yaml, rule 'params': params key 'weight.max_iter': duplicate key (line *); the second value would "
        "silently replace the first",
    ),
    "unknown params key": (
        "weight",
        _params("  max_iter: 100", "  max_iterations: 100"),
        "params.yaml, rule 'params': params key 'weight.max_iterations': unknown key (known: *)",
    ),
    "wrong params type": (
        "weight",
        _params("  max_iter: 100", "  max_iter: 100.0"),
        "params.yaml, rule 'params': params key 'weight.max_iter': expected a whole number >= 1, got 100.0",
    ),
    "params octal number": (
        "weight",
        _params("  max_iter: 100", "  max_iter: 0100"),
        "params.yaml, rule 'params': params key 'weight.max_iter': the number '0100' would be read as 64 (YAML 1.1 "
        "reads a leading 0 as octal, 0x as hex, ':' as base 60 and ignores '_'); write it in plain decimal digits",
    ),
    "spec code in base 60": (
        "ingest",
        _spec("  waves: [2019, 2020, 2021]", "  waves: [2019, 2020, 33:41]"),
        "wij_monitor.yaml, rule 'questionnaire_spec': spec key 'survey.waves.2': the number '33:41' would be read "
        "as 2021 (YAML 1.1 *); write it in plain decimal digits",
    ),
    "params number as text": (
        "weight",
        _params("  tol: 1.0e-10", "  tol: 1e-10"),
        "params.yaml, rule 'params': params key 'weight.tol': expected a share of the sum of weights in (0, 1), got "
        "'1e-10' (YAML read it as text: remove any quotes; write an exponent with a decimal point and a sign, e.g. "
        "1.0e-10 or 1.0e+2)",
    ),
    "duplicate spec key": (
        "ingest",
        _spec("  respondent_id: resp_id", "  respondent_id: resp_id\n  respondent_id: wave"),
        "wij_monitor.yaml, rule 'questionnaire_spec': spec key 'survey.respondent_id': duplicate key (line *); "
        "the second value would silently replace the first",
    ),
    "unknown spec key": (
        "ingest",
        _spec("  # not_measured: {2022:", "  not_measurd: {2022:"),
        "wij_monitor.yaml, rule 'questionnaire_spec': spec key 'survey.not_measurd': unknown key (allowed: *)",
    ),
    "wrong spec type": (
        "ingest",
        _spec("  waves: [2019, 2020, 2021]", '  waves: [2019, "2020", 2021]'),
        "wij_monitor.yaml, rule 'questionnaire_spec': spec key 'survey.waves.1': expected a whole number, got '2020'",
    ),
    "receipt mismatch": (
        "ingest",
        _receipt({2020: "299"}),
        "wij_panel_2020.sav, rule 'receipt': the file has * data rows but the panel provider's receipt "
        "(receipt.csv, row 3) says 299 respondents for wave 2020",
    ),
    "receipt 1,000 unquoted": (
        "ingest",
        lambda project: (
            _receipt()(project),
            _replace_line(project / "data" / "raw" / "receipt.csv", 2, "2019,1,000,test"),
        ),
        "receipt.csv, row 2, rule 'receipt': malformed CSV: the row has 4 fields but the header has 3; "
        "a separator inside an unquoted value or at the end of the row?",
    ),
    "receipt 1.000": (
        "ingest",
        _receipt({2021: "1.000"}),
        "receipt.csv, row 4, column 'expected_respondents', rule 'receipt': " + SEPARATOR + ", got '1.000'",
    ),
    "registration count 28.153": (
        "estimate",
        lambda project: _replace_line(
            project / REGISTRATIONS, 4, "entree_requests,2021,28.153,count,synthetisch (demo),"
        ),
        f"{REGISTRATIONS}, row 4, column 'value', rule 'registrations_number': " + SEPARATOR + ", got '28.153'",
    ),
    "registration unknown id": (
        "estimate",
        lambda project: _replace_line(project / REGISTRATIONS, 2, "meldingen,2019,35812,count,synthetisch (demo),"),
        f"{REGISTRATIONS}, row 2, column 'indicator_id', rule 'registrations_unknown_indicator': "
        "'meldingen' is not a registration of the spec*",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_one_line_and_keeps_the_previous_outputs(project, capsys, case):
    verb, damage, expected = CASES[case]
    before = _outputs(project)
    damage(project)
    capsys.readouterr()
    assert cli.main(["--project-dir", str(project), "--quiet", verb]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert fnmatch.fnmatchcase(lines[0], "survey-pipeline: error: *" + expected), lines[0]
    assert _outputs(project) == before


def test_a_matching_receipt_passes_and_is_recorded(project):
    _receipt()(project)
    assert cli.main(["--project-dir", str(project), "--quiet", "ingest"]) == 0
    files = yaml.safe_load((project / "outputs" / "ingest" / "files.json").read_text(encoding="utf-8"))
    assert {entry["receipt"]["checked"] for entry in files.values()} == {True}


def test_rows_in_of_every_wave_are_the_cases_its_file_declares(finished):
    """Rows are reconciled with the case count in each file's header, not with what a reader returned."""
    metrics = yaml.safe_load((finished / "outputs" / "validate" / "metrics.json").read_text(encoding="utf-8"))
    for wave in (2019, 2020, 2021):
        header = (finished / "data" / "raw" / f"wij_panel_{wave}.sav").read_bytes()[:HEADER_SIZE]
        declared = struct.unpack_from("<i", header, NCASES_OFFSET)[0]
        counts = metrics["waves"][str(wave)]
        assert declared >= 300 and counts["rows_in"] == declared
        assert counts["rows_valid"] + counts["rows_quarantined"] == declared
