"""Paths the core takes only on large inputs (to bound memory) give the same numbers as
the paths small inputs take: forced here on small designs by lowering their thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from test_core_batch import CHANGE_NUMERIC, NUMERIC, SHARES, assert_same, make_data, make_design

from survey_pipeline.core import tables, variance
from survey_pipeline.core.variance import _distinct_per_output


@pytest.mark.parametrize("presence_table", [1 << 22, 0])
def test_distinct_units_per_output_match_a_count_of_pairs(presence_table, monkeypatch):
    """Dense presence table and unit-major sparse pattern both count distinct (output, unit) pairs."""
    monkeypatch.setattr(variance, "_PRESENCE_TABLE", presence_table)
    rng = np.random.default_rng(4)
    n_units, n_out = 2000, 7  # (outputs + 1) x units above 4 x the 900 rows: sparse when forced
    unit = rng.integers(0, n_units, 300)
    out = rng.integers(-1, n_out, (3, 300))  # a batch of 3 shares, -1: outside every output
    expected = np.zeros(n_out, dtype=np.int64)
    for o, _u in {(o, u) for row in out for o, u in zip(row, unit) if o >= 0}:
        expected[o] += 1
    np.testing.assert_array_equal(_distinct_per_output(out, unit, n_units, n_out), expected)


def test_clustered_variance_in_blocks_of_outputs_equals_one_block(monkeypatch):
    """The quadratic forms of the calibrated clustered variance, one output at a time."""
    df = make_data(9)
    df["wave"] = np.where(np.arange(len(df)) % 2 == 0, 2020, 2021)
    design = make_design(df, "raked_clustered")
    whole = design.differences(SHARES, ("wave", 2020, 2021), by="wijk")
    monkeypatch.setattr(variance, "_DENSE_BLOCK", 1)
    blocks = make_design(df, "raked_clustered").differences(SHARES, ("wave", 2020, 2021), by="wijk")
    assert_same(blocks, whole, CHANGE_NUMERIC)


def test_tables_in_chunks_of_one_share_equal_one_chunk(monkeypatch):
    design = make_design(make_data(9, n=3000), "raked")
    whole = design.proportions(SHARES, by="wijk", ci="beta")
    monkeypatch.setattr(tables, "TABLE_CHUNK", 1)
    monkeypatch.setattr(tables, "KEEP_SLOTS", 0)
    chunked = make_design(make_data(9, n=3000), "raked").proportions(SHARES, by="wijk", ci="beta")
    assert_same(chunked, whole, NUMERIC)
