"""Command line: `survey-pipeline <stage>` or `survey-pipeline run` (all stages).

A thin shell over the stage modules, built for scheduled runs:
exit 0 on success, 2 on bad input / spec / params, 1 on an internal error;
a one-line error on stderr (the traceback only with `--debug`); a progress
display on a terminal and plain timestamped logs otherwise. Outputs are staged
and swapped into `outputs/` only when every requested stage succeeded.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

# pandas, pandera, yaml and the stages are imported when a command runs, not for `--help` or a usage error.
from survey_pipeline.errors import InputError

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2

# In the order they run (artifacts.STAGES, which needs pandas to import).
STAGE_MODULES = {
    "ingest": "survey_pipeline.ingest",
    "validate": "survey_pipeline.validate",
    "weight": "survey_pipeline.weight",
    "estimate": "survey_pipeline.estimate",
    "report": "survey_pipeline.report.stage",
}

log = logging.getLogger("survey_pipeline")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="survey-pipeline",
        description="Validate, weight and estimate resident-panel waves into the annual report's indicator tables.",
    )
    parser.add_argument("--project-dir", type=Path, default=Path("."), help="project root (default: .)")
    parser.add_argument("--params", type=Path, default=None, help="params file (default: <project-dir>/params.yaml)")
    parser.add_argument("--outputs", type=Path, default=None, help="outputs folder (default: <project-dir>/outputs)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for stage in STAGE_MODULES:
        verbs.add_parser(stage, help=f"run the {stage} stage alone (reads the earlier stages' outputs)")
    verbs.add_parser("run", help="run every stage in order; outputs change only if all succeed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(sys.stderr, debug=args.debug, quiet=args.quiet)
    try:
        run_command(args)
    except InputError as exc:
        return _fail(exc, EXIT_INPUT, args.debug)
    except KeyboardInterrupt:
        print("survey-pipeline: interrupted; outputs left as they were", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - the contract: one line, exit 1
        return _fail(exc, EXIT_INTERNAL, args.debug)
    return EXIT_OK


def run_command(args: argparse.Namespace) -> None:
    """Run the requested stages in one staged transaction and record the manifest."""
    from survey_pipeline import manifest
    from survey_pipeline.artifacts import STAGES, OutputStore
    from survey_pipeline.params import load_params
    from survey_pipeline.spec import load_spec

    base_dir = args.project_dir.resolve()
    params_path = args.params or base_dir / "params.yaml"
    params = load_params(params_path)
    spec = load_spec(base_dir / params["spec"])
    stages = STAGES if args.verb == "run" else (args.verb,)
    store = OutputStore(args.outputs or base_dir / "outputs")
    record = manifest.start(args.verb, base_dir, params_path, params)
    try:
        for number, stage in enumerate(stages, start=1):
            record["stages"][stage] = _run_stage(stage, number, len(stages), store, spec, params, base_dir)
        manifest.write(record, store, base_dir)
    except BaseException:
        store.discard()
        raise
    store.commit()
    manifest.write_run_manifest(store.root)
    log.info("done: outputs in %s", store.root)


def _run_stage(stage, number, total, store, spec, params, base_dir) -> dict:
    from survey_pipeline import manifest

    module = importlib.import_module(STAGE_MODULES[stage])
    log.info("[%d/%d] %s ...", number, total, stage)
    started = time.time()
    counts = module.run(store, spec, params, base_dir) or {}
    finished = time.time()
    log.info("[%d/%d] %s done in %.1f s", number, total, stage, finished - started)
    return {"started_at": manifest.iso(started), "finished_at": manifest.iso(finished), **counts}


def _fail(exc: BaseException, code: int, debug: bool) -> int:
    if debug:
        logging.getLogger("survey_pipeline").exception("failed")
    kind = "error" if code == EXIT_INPUT else "internal error"
    message = exc.one_line() if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
    first_line = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    print(f"survey-pipeline: {kind}: {first_line}", file=sys.stderr)
    if code == EXIT_INTERNAL and not debug:
        print("survey-pipeline: rerun with --debug for the traceback", file=sys.stderr)
    return code


def _configure_logging(stream: TextIO, *, debug: bool, quiet: bool) -> None:
    """Short progress lines on a terminal; timestamped plain logs for scheduled runs."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(stream)
    if stream.isatty():
        handler.setFormatter(logging.Formatter("\u25b8 %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("survey_pipeline")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("great_expectations", "matplotlib", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
