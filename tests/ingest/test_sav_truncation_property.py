"""Property: ingest reads every row of an SPSS file or refuses it; never fewer rows.

For random cut points (biased towards 4 KiB boundaries, where a copy or download
stops) of a demo-like file, uncompressed, bytecode- and zlib-compressed, with the
header's case count declared or -1 (unknown), `read_raw_file` either returns all
rows or raises `InputError` (exit 2 in the CLI) naming the file.
"""

from __future__ import annotations

import struct

import pyreadstat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from survey_pipeline.artifacts import PROJECT_ROOT
from survey_pipeline.errors import InputError
from survey_pipeline.sav import write_sav
from survey_pipeline.spec import load_spec
from survey_pipeline.stages.ingest.sav_structure import NCASES_OFFSET
from survey_pipeline.stages.ingest.stage import read_raw_file

N = 150
KINDS = {"uncompressed": (".sav", False), "bytecode": (".sav", True), "zlib": (".zsav", False)}
SPEC = load_spec(PROJECT_ROOT / "questionnaires" / "wij_monitor.yaml")


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """(file to overwrite, whole content) per kind and case-count variant."""
    frame, _ = pyreadstat.read_sav(
        str(PROJECT_ROOT / "data" / "raw" / "wij_panel_2019.sav"), user_missing=True, row_limit=N
    )
    out = {}
    for kind, (suffix, row_compress) in KINDS.items():
        folder = tmp_path_factory.mktemp(kind)
        path = folder / f"wij_panel_2019{suffix}"
        write_sav(frame, path, SPEC, "WIJ-monitor test", row_compress=row_compress)
        content = path.read_bytes()
        out[(kind, "declared")] = (path, content)
        out[(kind, "unknown_count")] = (
            path,
            content[:NCASES_OFFSET] + struct.pack("<i", -1) + content[NCASES_OFFSET + 4 :],
        )
    return out


@pytest.mark.parametrize("count", ["declared", "unknown_count"])
@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_cut_file_is_read_whole_or_refused(variants, kind, count, data):
    path, content = variants[(kind, count)]
    size = len(content)
    cut = data.draw(
        st.one_of(st.integers(0, size), st.sampled_from(range(4096, size + 1, 4096)), st.just(size)), label="cut"
    )
    path.write_bytes(content[:cut])
    try:
        frame, report = read_raw_file(path, SPEC)
    except InputError as exc:
        assert exc.file == path.name and "\n" not in str(exc)
        assert cut < size or (kind, count) == ("uncompressed", "unknown_count")
        return
    assert cut == size
    assert len(frame) == N and report.n_rows == N and report.errors == []
