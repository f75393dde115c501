"""Formula-safe CSV in every spreadsheet locale, and the Dutch-Excel flavour.

The checks cut every text the way a spreadsheet in some locale may cut it (at
",", ";", tab and line breaks) and require that no piece starts with a formula
trigger once leading spaces and double quotes are skipped; a piece that starts
with the "'" prefix is text. The trigger list is written out here on purpose,
independently of the module under test.
"""

from __future__ import annotations

import csv
import io
import re
from types import SimpleNamespace

import openpyxl
import pandas as pd
import pytest
import report_fixtures as rf
import yaml
from hypothesis import given
from hypothesis import strategies as st

from survey_pipeline import contracts
from survey_pipeline.artifacts import OutputStore, read_table
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.report import stage
from survey_pipeline.stages.report.csv_safety import (
    DUTCH_EXCEL,
    FLAVOURS,
    STANDARD,
    csv_path,
    neutralise_formulas,
    write_csv,
    write_csv_files,
)

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0", "\uff1d", "\uff0b", "\uff0d", "\uff20")
SEPARATORS = r"[,;\t\r\n]"
DELIMITERS = (",", ";", "\t")
NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?")

HOSTILE = (
    "Wijk;=cmd|' /C calc'!A0",
    "=1",
    "+1",
    "-1",
    "@SUM(1+1)",
    "\t=1",
    "\r=1",
    "\0=1",
    "=1+1\t",
    "-2+3;=1",
    "\uff1d1+1",
    "\uff0b1",
    "\uff0dcmd",
    "\uff20SUM(1)",
    "Wijk,+cmd|' /C calc'!A0",
    "Wijk\t-2+3",
    "Wijk\n@SUM(1)",
    "Wijk\r\n=1",
    'Wijk; "=1"',
    "Wijk;   =1",
    '"=1+1";=2,=3',
    "- (i.v.m. COVID)",
    "-\t=1",
)
# Harmless alone, a formula in a file: a reader that cuts at ";" reads "-" and the next columns as one cell.
HOSTILE_IN_A_LINE = ("x;-",)
ORDINARY = (
    "% Bewoners (18 jaar e.o.) dat aangeeft (wel eens) gehoord te hebben van WIJ Groningen",
    "Hortusbuurt-Ebbingekwartier",
    "18-34 jaar",
    "van de bewoners met een Wmo-maatwerkvoorziening",
    "min_n_eff;max_ci_width",
    ">80%",
    "afname <20%",
    "target_not_evaluable:estimate_suppressed",
    "Totaal",
    "",
    "-",
    "'=1 is al tekst",
    "Heeft u (wel eens) contact gehad?",
)


def _unsafe(field: str, *, numbers_allowed: bool) -> list[str]:
    """The field itself and each of its pieces that a spreadsheet could run as a formula (a lone "-" is text)."""
    found = []
    for piece in [field, *re.split(SEPARATORS, field)]:
        start = piece.lstrip(' "')
        if not start.startswith(TRIGGERS) or start.rstrip(' "') == "-":
            continue
        if numbers_allowed and NUMBER.fullmatch(start.rstrip(' "')):
            continue  # a number in a numeric column, e.g. -0.5 or -0,5
        found.append(piece)
    return found


def _unsafe_in_file(path, encoding: str) -> list[tuple[str, str]]:
    """(reader, piece) for every unsafe piece when the file is read at each delimiter, and cut naively."""
    with path.open(encoding=encoding, newline="") as handle:
        text = handle.read()
    found = []
    for delimiter in DELIMITERS:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            found += [(repr(delimiter), p) for field in row for p in _unsafe(field, numbers_allowed=True)]
    found += [("naive", p) for piece in re.split(SEPARATORS, text) for p in _unsafe(piece, numbers_allowed=True)]
    return found


def _only_quotes_added(original: str, neutralised: str) -> bool:
    """True if `neutralised` is `original` with single quotes inserted and nothing else changed."""
    rest = iter(neutralised)
    for char in original:
        for got in rest:
            if got == char:
                break
            if got != "'":
                return False
        else:
            return False
    return all(c == "'" for c in rest)


@pytest.mark.parametrize("text", HOSTILE)
def test_no_piece_of_hostile_text_starts_with_a_trigger(text):
    assert _unsafe(text, numbers_allowed=False)  # the test input is hostile: the check can fail
    safe = neutralise_formulas(text)
    assert _unsafe(safe, numbers_allowed=False) == []
    assert _only_quotes_added(text, safe)
    assert neutralise_formulas(safe) == safe


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("Wijk;=cmd|' /C calc'!A0", "Wijk;'=cmd|' /C calc'!A0"),  # the second cell in Dutch Excel
        ("\t=1", "'\t'=1"),  # tab is a trigger and a separator
        ("Wijk;   =1", "Wijk;   '=1"),  # the quote goes right before the trigger
        ('Wijk; "=1"', 'Wijk; "\'=1"'),  # ... also inside a quoted piece
        ("-1", "'-1"),  # text, not a number: OWASP's rule
        ("- (i.v.m. COVID)", "'- (i.v.m. COVID)"),  # readable; after "-" anything may be an operand
        ("-", "-"),  # the not-published marker: no operand, inert
        (" - ", " '- "),  # only the marker itself is exempt
        ("x;-", "x;'-"),  # cut at ";", the next column follows the "-"
        ("-;=1", "'-;'=1"),
        ("\uff1d1", "'\uff1d1"),
    ],
)
def test_documented_choices(text, safe):
    assert neutralise_formulas(text) == safe


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_unchanged(text):
    assert neutralise_formulas(text) == text


@given(
    st.text(
        alphabet=st.sampled_from([*TRIGGERS, ",", ";", "\n", " ", '"', "'", "a", "1", "\u00e9", "\u00a0"]), max_size=30
    )
)
def test_any_text_is_neutralised_by_inserting_quotes_only(text):
    safe = neutralise_formulas(text)
    assert _unsafe(safe, numbers_allowed=False) == []
    assert _only_quotes_added(text, safe)
    assert neutralise_formulas(safe) == safe


def _hostile_frame(published) -> pd.DataFrame:
    """Published changes (negative differences and bounds) with hostile labels."""
    labels = (*HOSTILE, *HOSTILE_IN_A_LINE, "-")
    frame = published["changes"].head(len(labels)).copy()
    assert len(frame) == len(labels) and (frame["ci_lower"] < 0).any()
    frame["breakdown_label"] = pd.array(labels, dtype="str")
    return frame


def test_both_flavours_are_safe_at_every_delimiter(tmp_path, published):
    frame = _hostile_frame(published)
    paths = write_csv_files(frame, tmp_path, "changes")
    assert [p.name for p in paths] == ["changes.csv", "changes_excel_nl.csv"]
    for path, flavour in zip(paths, FLAVOURS):
        assert _unsafe_in_file(path, flavour.encoding) == []
        # read at its own separator: each label is the neutralised label, the quote prefix aside unchanged
        with path.open(encoding=flavour.encoding, newline="") as handle:
            labels = [row["breakdown_label"] for row in csv.DictReader(handle, delimiter=flavour.separator)]
        assert labels == [neutralise_formulas(t) for t in frame["breakdown_label"]]
    assert paths[1].read_bytes().startswith(b"\xef\xbb\xbf") and not paths[0].read_bytes().startswith(b"\xef")


def test_the_old_rule_fails_the_check(tmp_path, published):
    """A prefix on the first character only (the previous rule) leaves `Wijk;=cmd...` a formula in Dutch Excel."""
    frame = _hostile_frame(published)
    first_char_only = frame.assign(
        breakdown_label=frame["breakdown_label"].map(
            lambda t: "'" + t if t.startswith(("=", "+", "-", "@", "\t", "\r")) else t
        )
    )
    first_char_only.to_csv(tmp_path / "old.csv", index=False, lineterminator="\n")
    found = [(reader, piece.split(",")[0]) for reader, piece in _unsafe_in_file(tmp_path / "old.csv", "utf-8")]
    assert ("';'", "=cmd|' /C calc'!A0") in found and ("';'", "-") in found


def test_numbers_stay_numbers_in_both_flavours(tmp_path, published):
    frame = _hostile_frame(published)
    write_csv_files(frame, tmp_path, "changes")
    standard = pd.read_csv(csv_path(tmp_path, "changes", STANDARD))  # pandas 3 parses floats exactly
    dutch = pd.read_csv(csv_path(tmp_path, "changes", DUTCH_EXCEL), sep=";", decimal=",", encoding="utf-8-sig")
    pd.testing.assert_frame_equal(dutch, standard, check_exact=True)
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    assert {"difference", "ci_lower", "suppressed"} <= set(numeric)
    for column in numeric:
        assert standard[column].dtype.kind == frame[column].dtype.kind, column
        pd.testing.assert_series_equal(standard[column], frame[column].reset_index(drop=True), check_exact=True)
    assert (standard["ci_lower"] < 0).any()  # negative numbers are numbers, unprefixed
    text = csv_path(tmp_path, "changes", DUTCH_EXCEL).read_text(encoding="utf-8-sig")
    negative = float(frame["ci_lower"][frame["ci_lower"] < 0].iloc[0])
    assert f";{negative!r};".replace(".", ",") in text  # decimal comma, no quote, no thousands separator


def test_a_carriage_return_inside_a_text_does_not_break_the_row(tmp_path):
    """With "\n" line ends Python's CSV writer leaves a lone "\r" unquoted and readers end the row there."""
    write_csv(pd.DataFrame({"label": ["a\rb", "c"], "estimate": [-0.5, 0.5]}), tmp_path / "r.csv")
    with (tmp_path / "r.csv").open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [["label", "estimate"], ["a\rb", "-0.5"], ["c", "0.5"]]


def test_header_is_neutralised_like_text(tmp_path):
    write_csv(pd.DataFrame({"=x": [1.5], "label": ["ok"]}), tmp_path / "h.csv")
    assert (tmp_path / "h.csv").read_text(encoding="utf-8").splitlines()[0] == "'=x,label"


# --- the whole report stage on a spec copy with hostile labels ---------------------------------------------------

HOSTILE_SPEC = {
    ("survey", "title"): '=HYPERLINK("http://x")',
    ("background", "wijk", "codes", 1): "Wijk;=cmd|' /C calc'!A0",
    ("background", "wijk", "codes", 2): "- (i.v.m. COVID)",
    ("background", "wijk", "codes", 3): "-",
    ("background", "sex", "codes", 1): "@SUM(1+1)",
    ("background", "sex", "codes", 2): "\t=1",
    ("variables", "heard", "label"): "-2+3;=1",
    ("variables", "heard", "codes", 1): "\uff1dcmd|' /C calc'!A0",  # not in a figure: the font has no glyph
    ("variables", "heard", "codes", 2): "nee\n=1+1",
    ("groups", "heard_of_wij", "label"): 'x; "=1"',
    ("indicators", 0, "label"): "+1",
    ("indicators", 1, "label"): "=1",
}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, params):
    raw = yaml.safe_load((rf.ROOT / "questionnaires" / "wij_monitor.yaml").read_text(encoding="utf-8"))
    for keys, value in HOSTILE_SPEC.items():
        node = raw
        for key in keys[:-1]:
            node = node[key]
        if keys[0] == "variables" and keys[-2] == "codes":
            node = raw["variables"][keys[1]]["codes"] = dict(node)  # the scale is a shared YAML anchor
        node[keys[-1]] = value
    root = tmp_path_factory.mktemp("hostile")
    (root / "spec.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    spec = load_spec(root / "spec.yaml")
    params = params.model_copy(update={"report": params.report.model_copy(update={"figure_formats": ("svg",)})})
    rf.write_stage_outputs(root / "outputs", spec, params)
    store = OutputStore(root / "outputs")
    stage.run(store, spec, params, rf.ROOT)
    store.commit()
    return SimpleNamespace(report=root / "outputs" / "report", spec=spec)


def test_hostile_labels_reach_every_csv_and_none_is_a_formula(hostile_run):
    report = hostile_run.report
    files = sorted(p.name for p in report.glob("*.csv"))
    assert files == sorted(csv_path(report, n, f).name for n in stage.TABLES for f in FLAVOURS)
    for name in stage.TABLES:
        published = read_table(report / f"{name}.parquet", contracts.REPORT_TABLES[name], hostile_run.spec)
        texts = {
            v for c in published.columns if published[c].dtype == "str" for v in published[c] if isinstance(v, str)
        }
        hostile_here = set(HOSTILE_SPEC.values()) & {part for t in texts for part in (t, t.removeprefix("van "))}
        assert hostile_here, name  # the parquet keeps the hostile text unchanged
        for flavour in FLAVOURS:
            path = csv_path(report, name, flavour)
            assert _unsafe_in_file(path, flavour.encoding) == [], path.name
            frame = pd.read_csv(
                path,
                sep=flavour.separator,
                decimal=flavour.decimal,
                encoding=flavour.encoding,
                keep_default_na=False,
                dtype=str,
            )
            written = {v for c in frame.columns for v in frame[c]}
            assert {neutralise_formulas(t) for t in texts} <= written, path.name
    indicators = pd.read_csv(report / "indicators.csv", keep_default_na=False, dtype=str)
    assert "'+1" in set(indicators["label"])  # "+1" is text here, so it is prefixed


def test_hostile_labels_are_text_cells_in_every_sheet(hostile_run):
    book = openpyxl.load_workbook(hostile_run.report / "tabellen.xlsx")
    strings = set()
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate)
                if cell.data_type == "s":
                    strings.add(cell.value)
    assert {'=HYPERLINK("http://x")', "Wijk;=cmd|' /C calc'!A0", "@SUM(1+1)", "\t=1", "-2+3;=1", "+1"} <= strings
