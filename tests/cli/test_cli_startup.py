"""`survey-pipeline --help` starts fast: the heavy libraries are imported only when a command runs."""

from __future__ import annotations

import json
import subprocess
import sys

from survey_pipeline import artifacts, cli

HELP = """
import contextlib, io, json, sys
from survey_pipeline import cli
with contextlib.redirect_stdout(io.StringIO()) as shown, contextlib.suppress(SystemExit):
    cli.main(["--help"])
heavy = ("pandas", "numpy", "pandera", "yaml", "great_expectations", "matplotlib", "survey_pipeline.artifacts")
print(json.dumps({"help": shown.getvalue(), "imported": [m for m in heavy if m in sys.modules]}))
"""


def test_help_imports_no_data_library():
    done = subprocess.run([sys.executable, "-c", HELP], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["imported"] == []
    assert all(stage in result["help"] for stage in artifacts.STAGES)


def test_the_parser_offers_the_stages_in_their_run_order():
    assert tuple(cli.STAGE_MODULES) == artifacts.STAGES
