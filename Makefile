# Two entry points for a fresh machine with Python 3.11 and make:
#   make run    - install into .venv (reused while current) and run the pipeline on the demo panel
#   make test   - install into .venv (reused while current), lint (ruff), type-check (mypy) and run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test browser repro dvc-yaml schemas spec-schema demo-data clean-outputs

# The venv is rebuilt only when the dependency declarations change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

# In a git + DVC checkout `survey-pipeline run` runs only the stages whose inputs changed since
# the run dvc.lock records, in one process, and then records them there: the same record as
# `make repro`, so neither re-runs what the other just ran. Elsewhere it runs every stage.
run: $(STAMP)
	$(BIN)/survey-pipeline run
	@echo "Indicator tables: outputs/report/ (open outputs/report/jaarverslag.html); run manifest: outputs/manifest.json"

test: $(STAMP) browser
	$(BIN)/ruff check survey_pipeline tests benchmarks
	$(BIN)/ruff format --check survey_pipeline tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# CI (CI=true, as root) installs Debian's chromium for the HTML rendering test;
# elsewhere that test is skipped, with its reason, when no browser is present.
browser:
	@if [ "$$CI" = "true" ] && ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 \
	    && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) \
	    >/dev/null 2>&1 || echo "chromium could not be installed: the rendering test will be skipped"; \
	fi

# The same stages as a DVC pipeline (dvc.yaml), one process per stage; PATH makes DVC find the venv's commands.
repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# Regenerate dvc.yaml from the stage declarations (survey_pipeline/stage_graph.py).
dvc-yaml: $(STAMP)
	$(BIN)/python -m survey_pipeline.stage_graph

# Regenerate the JSON Schemas in schemas/ (installed as package data): the questionnaire spec's, for
# editors (survey_pipeline/spec.py), and those of the JSON outputs and table contracts (survey_pipeline/contracts.py).
schemas: $(STAMP)
	$(BIN)/python -m survey_pipeline.schema_files

spec-schema: schemas

# Regenerate the synthetic demo panel in data/ (deterministic).
demo-data: $(STAMP)
	$(BIN)/python -m survey_pipeline.demo

clean-outputs:
	rm -rf outputs/ingest outputs/validate outputs/weight outputs/estimate outputs/report outputs/manifest.json outputs/.cache
