"""The shared SPSS writer: labels, value labels and user-missing codes survive a round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyreadstat
import pytest

from survey_pipeline.artifacts import PROJECT_ROOT
from survey_pipeline.sav import spec_metadata, write_sav
from survey_pipeline.spec import load_spec


@pytest.fixture(scope="module")
def spec():
    return load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.mark.parametrize("suffix", [".sav", ".zsav"])
def test_round_trip_keeps_spec_metadata(tmp_path, spec, suffix):
    frame = pd.DataFrame(
        {
            "resp_id": pd.array([1, 2, None], dtype="Int64"),
            "wave": [2019, 2019, 2019],
            "wijk": [1.0, 30.0, np.nan],
            "heard": [1.0, 99.0, -1.0],
            "base_weight": [1.5, 2.0, 0.5],
        }
    )
    path = tmp_path / f"wij_panel_2019{suffix}"
    write_sav(frame, path, spec, "WIJ-monitor 2019", extra_variable_labels={"base_weight": "Ontwerpgewicht"})

    data, meta = pyreadstat.read_sav(str(path), user_missing=True)
    assert list(data.columns) == ["resp_id", "wave", "wijk", "heard", "base_weight"]
    assert data["heard"].tolist() == [1.0, 99.0, -1.0]
    assert data["resp_id"].isna().tolist() == [False, False, True]
    assert meta.file_label == "WIJ-monitor 2019"
    assert meta.column_names_to_labels["heard"] == spec.variables["heard"].label
    assert meta.column_names_to_labels["wijk"] == "Wijk"
    assert meta.column_names_to_labels["base_weight"] == "Ontwerpgewicht"
    assert meta.column_names_to_labels["resp_id"] is None
    assert meta.variable_value_labels["heard"] == {
        1.0: "ja",
        2.0: "nee",
        99.0: "weet niet",
        98.0: "geen antwoord",
        -1.0: "niet gevraagd",
    }
    assert meta.variable_value_labels["wijk"][30.0] == "Ten Boer"
    assert meta.missing_ranges == {"heard": [{"lo": c, "hi": c} for c in (99.0, 98.0, -1.0)]}


def test_user_missing_codes_are_missing_for_spss_readers(tmp_path, spec):
    path = tmp_path / "x.sav"
    write_sav(pd.DataFrame({"heard": [1.0, 98.0, -1.0]}), path, spec, "x")
    data, _ = pyreadstat.read_sav(str(path))
    assert data["heard"].isna().tolist() == [False, True, True]


def test_metadata_of_unknown_column_is_empty(spec):
    meta = spec_metadata(["other"], spec)
    assert meta.column_labels == {"other": None}
    assert meta.value_labels == {} and meta.missing_ranges == {}


def test_long_file_label_is_cut_at_a_character_boundary(tmp_path, spec):
    path = tmp_path / "x.sav"
    label = "Bewonerspanel" + "één " * 20  # byte 64 falls inside an "é"
    write_sav(pd.DataFrame({"heard": [1.0]}), path, spec, label)
    header_label = path.read_bytes()[109:173]  # the header's 64-byte file label field
    text = header_label.rstrip(b" \x00").decode("utf-8")
    assert len(text.encode("utf-8")) == 63 and label.startswith(text) and text.endswith("é")
    assert pyreadstat.read_sav(str(path))[1].file_label == text


def test_a_refused_spss_write_names_the_file_and_is_a_write_error(tmp_path, monkeypatch):
    """ReadStat says only 'Unable to write data' when the disk is full or the file too large:
    the error still names the file and is the file-system error of the CLI (exit 3)."""
    from survey_pipeline.errors import OutputWriteError

    spec = load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml")

    def refuse(*args, **kwargs):
        raise pyreadstat.ReadstatError("Unable to write data")

    monkeypatch.setattr(pyreadstat, "write_sav", refuse)
    target = tmp_path / "2019.sav"
    with pytest.raises(OutputWriteError) as caught:
        write_sav(pd.DataFrame({"resp_id": [1.0]}), target, spec, "label")
    assert caught.value.path == str(target)
    assert "Unable to write data" in str(caught.value) and "disk" in str(caught.value)


def _frames(spec):
    """Numeric frames as the demo and the weight stage write them: codes, user-missing codes,
    system-missing, a nullable integer id, weights, infinities and no rows at all."""
    from survey_pipeline.demo import generate_panel

    wave = generate_panel(spec, n_per_wave=200, seed=7).waves[2019]
    mixed = pd.DataFrame(
        {
            "resp_id": pd.array([1, None, 3, 4], dtype="Int64"),
            "heard": [1.0, 99.0, -1.0, np.nan],
            "weight": [0.5, np.inf, -0.0, 1e300],
        }
    )
    return {"demo wave": wave, "mixed": mixed, "no rows": wave.iloc[:0]}


@pytest.mark.parametrize("name", ["demo wave", "mixed", "no rows"])
def test_numeric_frames_are_written_byte_for_byte_as_readstat_writes_them(tmp_path, spec, monkeypatch, name):
    """The fast writer of uncompressed numeric data (dictionary from ReadStat, data from numpy)
    gives exactly ReadStat's own file."""
    from datetime import datetime

    from survey_pipeline import sav

    frame = _frames(spec)[name]
    labels = {"resp_id": "Respondentnummer", "weight": "Gewicht"}
    stamp = datetime(2019, 11, 15, 12, 0, 0)
    fast, slow = tmp_path / "fast.sav", tmp_path / "slow.sav"
    write_sav(frame, fast, spec, "label", extra_variable_labels=labels, timestamp=stamp)
    monkeypatch.setattr(sav, "_write_numeric_sav", lambda *args: False)
    write_sav(frame, slow, spec, "label", extra_variable_labels=labels, timestamp=stamp)
    assert fast.read_bytes() == slow.read_bytes()
    data, _ = pyreadstat.read_sav(str(fast), user_missing=True)
    assert len(data) == len(frame)
