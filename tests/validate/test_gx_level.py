"""`validate.gx_level`: off (GX never imported), checkpoint (gx_result.json), full (and GX's own Data Docs);
the validation page (data_docs/index.html) at every level."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from panel_builder import raw_frame, write_raw

from survey_pipeline.artifacts import PROJECT_ROOT

# Ingest and validate in a fresh interpreter, then say whether great_expectations was imported.
STAGES = """
import json, sys
from pathlib import Path
from survey_pipeline.stages.ingest import stage as ingest
from survey_pipeline.stages.validate import stage as validate
from survey_pipeline.artifacts import OutputStore
from survey_pipeline.settings import parse_params
from survey_pipeline.spec import load_spec

base, params = Path(sys.argv[1]), parse_params(json.loads(sys.argv[2]))
spec = load_spec(sys.argv[3])
store = OutputStore(base / "outputs")
ingest.run(store, spec, params, base)
counts = validate.run(store, spec, params, base)
store.commit()
print(json.dumps({"gx_imported": "great_expectations" in sys.modules, "counts": counts}))
"""


@pytest.mark.parametrize("level", ["off", "checkpoint", "full"])
def test_gx_level(tmp_path, spec, level):
    raw_dir = tmp_path / "data" / "raw"
    raw_dir.mkdir(parents=True)
    for offset, wave in enumerate(spec.waves):
        write_raw(raw_frame(spec, wave, 40, first_id=1 + offset * 7), raw_dir / f"wij_panel_{wave}.sav", spec)
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))
    params.update(
        ingest={"raw_dir": "data/raw", "file_pattern": "wij_panel_{wave}"},
        validate={"max_quarantine_share": 0.02, "gx_level": level},
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            STAGES,
            str(tmp_path),
            json.dumps(params),
            str(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    out = tmp_path / "outputs" / "validate"
    assert report["counts"]["gx_level"] == level
    assert report["counts"]["rows_valid"] == 3 * 40
    assert (out / "valid.parquet").exists() and (out / "metrics.json").exists()
    page = (out / "data_docs" / "index.html").read_text(encoding="utf-8")  # the data manager's page, at every level
    if level == "off":
        assert report["gx_imported"] is False
        assert not (out / "gx_result.json").exists() and not (out / "gx_data_docs").exists()
        assert "Great Expectations is niet uitgevoerd (validate.gx_level: off)" in page
        assert "gx_success" not in report["counts"]
    else:
        assert report["gx_imported"] is True
        gx = json.loads((out / "gx_result.json").read_text(encoding="utf-8"))
        assert gx["success"] is True and report["counts"]["gx_expectations"] == len(gx["expectations"])
        assert (out / "gx_data_docs" / "index.html").exists() == (level == "full")
        assert f"{len(gx['expectations'])} van {len(gx['expectations'])} verwachtingen geslaagd" in page
        assert ("gx_data_docs/index.html" in page) == (level == "full")
