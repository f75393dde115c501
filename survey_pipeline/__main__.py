"""`python -m survey_pipeline` is the same as the `survey-pipeline` command."""

import sys

from survey_pipeline.cli import main

sys.exit(main())
