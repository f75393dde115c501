"""The pure statistical core: numpy/pandas in, arrays and frames out, no I/O."""

R_SURVEY_VERSION = "4.1-1"
"""The version of R's `survey` package the estimators are checked against: the reference values in
tests/reference/*.json were computed with it by the scripts in tests/reference/r/ (a test checks that
they record this version); the method note states it."""
