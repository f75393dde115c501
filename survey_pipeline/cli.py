"""Command line: `survey-pipeline <stage>` or `survey-pipeline run` (all stages).

A thin shell over the stage modules, built for scheduled runs:
exit 0 on success, 2 on bad input / spec / params or outputs locked by another
run, 3 when the file system refuses a write (disk full, file too large,
permission denied, a file in the way), 1 on an internal error, 130 / 143 when
stopped by SIGINT / SIGTERM; a one-line error on stderr (the traceback only
with `--debug`); a progress display on a terminal and plain timestamped logs
otherwise, with text from input files escaped so that no input can forge a log
line. Outputs are staged and swapped into `outputs/` only when every requested
stage succeeded; one run at a time holds `outputs/.lock`.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

# pandas, pandera, yaml and the stages are imported when a command runs, not for `--help` or a usage error.
from survey_pipeline import dvc_record, gx_process
from survey_pipeline.errors import InputError, OutputWriteError, ParamsError, RunInterrupted, escape
from survey_pipeline.stage_graph import STAGES as GRAPH
from survey_pipeline.stage_graph import Stage

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_FILE_SYSTEM = 0, 1, 2, 3
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

# In the order they run, from the stage graph (artifacts.STAGES needs pandas to import).
STAGE_MODULES = {stage.name: stage.module for stage in GRAPH}

log = logging.getLogger("survey_pipeline")


GLOBAL_OPTIONS_NOTE = (
    "The options --project-dir, --params, --outputs, --debug and --quiet may come before or after the verb. "
    "Every command writes under the outputs folder (<project-dir>/outputs unless --outputs is given): "
    "the stage folders named above, manifest.json and manifests/<stage>.json (run metadata), failed/<stage>/ "
    "(what a stage that failed on its input wrote, for inspection); it holds .lock while it runs. "
    "Exit codes: 0 ok, 2 bad input/spec/params or outputs locked, 3 a refused write, 1 internal error."
)


def _add_global_options(parser: argparse.ArgumentParser, *, after_verb: bool) -> None:
    """The options every command takes. After the verb their defaults are suppressed, so an option
    given before the verb is not reset by the subcommand's parser."""

    def default(value):
        return argparse.SUPPRESS if after_verb else value

    parser.add_argument("--project-dir", type=Path, default=default(Path(".")), help="project root (default: .)")
    parser.add_argument(
        "--params", type=Path, default=default(None), help="params file (default: <project-dir>/params.yaml)"
    )
    parser.add_argument(
        "--outputs", type=Path, default=default(None), help="outputs folder (default: <project-dir>/outputs)"
    )
    parser.add_argument("--debug", action="store_true", default=default(False), help="show tracebacks and debug logs")
    parser.add_argument("--quiet", action="store_true", default=default(False), help="only warnings and errors")


def _lines(**fields: list[str]) -> str:
    """`name: a, b, c` lines, wrapped with a hanging indent."""
    return "\n".join(
        textwrap.fill(f"{name + ':':8}{', '.join(items)}", width=100, subsequent_indent=" " * 8)
        for name, items in fields.items()
    )


def _stage_description(stage: Stage) -> str:
    """What a stage does, reads and writes, from its declaration in the stage graph."""
    reads = [
        "the questionnaire spec (params `spec`)",
        *(f"the files named by params `{key}`" for key in stage.data_keys),
        *(f"outputs/{name}" for name in stage.reads),
    ]
    if "." in stage.folders:
        writes = [f"outputs/{stage.name}/ (the whole folder)"]
    else:
        names = [*stage.writes, *stage.metrics, *stage.untracked, *(f"{name}/" for name in stage.folders)]
        writes = [f"outputs/{stage.name}/{name}" for name in names]
    return f"{stage.summary()}\n\n" + _lines(
        reads=reads, writes=writes, params=[f"params.yaml sections {', '.join(stage.params)}"]
    )


def _run_description() -> str:
    steps = "\n".join(f"  {stage.name:9} {stage.summary()}" for stage in GRAPH)
    data = dict.fromkeys(key for stage in GRAPH for key in stage.data_keys)
    about = (
        "Run the stages in order; the outputs are staged and swapped in only when all succeed, so a failed run "
        "leaves the previous outputs as they were. In a git + DVC checkout (with the project's params.yaml and "
        "outputs folder) only the stages whose code, params section, data or upstream outputs changed since the "
        "run that dvc.lock records are run, with those downstream of them, and dvc.lock then records this run: "
        "`run` and `dvc repro` keep one record. --force runs every stage."
    )
    return f"{textwrap.fill(about, width=100)}\n\n{steps}\n\n" + _lines(
        reads=[
            "params.yaml",
            "the questionnaire spec (params `spec`)",
            *(f"the files named by params `{key}`" for key in data),
        ],
        writes=[f"outputs/{stage.name}/" for stage in GRAPH],
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="survey-pipeline",
        description="Validate, weight and estimate resident-panel waves into the annual report's indicator tables.",
        epilog=GLOBAL_OPTIONS_NOTE,
    )
    _add_global_options(parser, after_verb=False)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for stage in GRAPH:
        verb = verbs.add_parser(
            stage.name,
            help=f"run the {stage.name} stage alone (reads the earlier stages' outputs)",
            description=_stage_description(stage),
            epilog=GLOBAL_OPTIONS_NOTE,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_global_options(verb, after_verb=True)
    verb = verbs.add_parser(
        "run",
        help="run the stages whose inputs changed (every stage outside a DVC checkout); outputs change only if all succeed",
        description=_run_description(),
        epilog=GLOBAL_OPTIONS_NOTE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_global_options(verb, after_verb=True)
    verb.add_argument(
        "--force",
        action="store_true",
        help="run every stage, also those that dvc.lock records as up to date with their inputs",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: the process's own) and return its exit code.

    As the process's command (`argv` None), a SIGINT or SIGTERM after `main` returns is
    ignored: the outcome is decided, and interpreter shutdown would otherwise end a run that
    completed and swapped its outputs with 143 and no line on stderr. The objects the run
    leaves (a few hundred thousand: the modules of pandas, statsmodels, matplotlib, ...) are
    then frozen out of the garbage collector: shutdown would otherwise have it search them all
    for reference cycles, again and again while it clears the modules (~0.7 s of CPU after the
    last log line); atexit handlers, flushing and module teardown run as before. Called with
    `argv` (tests, embedding), the handlers and the garbage collector are left as they were:
    only the process's own command freezes, also between stages (`_freeze_what_lives_on`).
    """
    global _freeze_between_stages
    if argv is None and threading.current_thread() is threading.main_thread():
        _freeze_between_stages = True
        try:
            return _main(None)
        finally:
            for number in STOP_SIGNALS:
                signal.signal(number, signal.SIG_IGN)
            gc.freeze()
    return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(sys.stderr, debug=args.debug, quiet=args.quiet)
    try:
        with _stop_signals(_raise_interrupted):
            run_command(args)
    except (RunInterrupted, KeyboardInterrupt) as exc:
        stop = exc if isinstance(exc, RunInterrupted) else RunInterrupted(signal.SIGINT, signal.SIGINT.name)
        print(f"survey-pipeline: stopped by {stop.signal_name}; outputs left as they were", file=sys.stderr)
        return stop.exit_code
    except InputError as exc:
        return _fail(exc, EXIT_INPUT, args.debug)
    except OutputWriteError as exc:
        return _fail(exc, EXIT_FILE_SYSTEM, args.debug)
    except OSError as exc:
        if exc.errno is None:
            return _fail(exc, EXIT_INTERNAL, args.debug)
        outputs = args.outputs or args.project_dir.resolve() / "outputs"
        return _fail(OutputWriteError.from_os_error(exc, outputs), EXIT_FILE_SYSTEM, args.debug)
    except Exception as exc:
        return _fail(exc, EXIT_INTERNAL, args.debug)
    return EXIT_OK


def run_command(args: argparse.Namespace) -> None:
    """Run the requested stages in one staged transaction and record the manifest."""
    base_dir = args.project_dir.resolve()
    params_path = args.params or base_dir / "params.yaml"
    outputs = args.outputs or base_dir / "outputs"
    not_recorded = _why_dvc_record_not_used(args, base_dir, params_path, outputs)
    # DVC answers on the other core while this process imports pandas and checks its inputs
    with dvc_record.status_in_background(base_dir if not_recorded is None else None) as status:
        _run_stages(args, base_dir, params_path, outputs, not_recorded, status)


def _why_dvc_record_not_used(args: argparse.Namespace, base_dir: Path, params_path: Path, outputs: Path) -> str | None:
    """None when `run` is to follow and keep dvc.lock, else why not (a stage verb: DVC runs it)."""
    if args.verb != "run":
        return "a single stage"
    if args.force:
        return "--force"
    return dvc_record.why_not_used(base_dir, params_path, outputs)


def _run_stages(
    args: argparse.Namespace,
    base_dir: Path,
    params_path: Path,
    outputs: Path,
    not_recorded: str | None,
    status: dvc_record.PendingStatus | None,
) -> None:
    from survey_pipeline import manifest
    from survey_pipeline.artifacts import OutputStore
    from survey_pipeline.settings import load_params
    from survey_pipeline.spec import load_spec

    params = load_params(params_path)  # the whole file, every section, before any stage runs
    spec = load_spec(base_dir / params.spec)
    try:
        params.check_against(spec)
    except ParamsError as exc:
        exc.file = str(params_path)
        raise
    store = OutputStore(outputs)
    with store.session(args.verb):
        stages, recorded_by_dvc = _stages_to_run(args.verb, not_recorded, status)
        record = manifest.start(args.verb, base_dir, params_path, params)
        try:
            # GX is imported and validate's checkpoint runs in a worker while the other stages run
            # (survey_pipeline.gx_process); a single stage verb has nothing to overlap.
            checkpoints = params.validate_.gx_level != "off" and bool({"validate", "report"} & set(stages))
            with gx_process.started(args.verb == "run" and checkpoints, spec):
                for number, stage in enumerate(stages, start=1):
                    record["stages"][stage] = _run_stage(stage, number, len(stages), store, spec, params, base_dir)
            manifest.write(record, store, base_dir)
        except BaseException as exc:
            store.discard()
            if isinstance(exc, ParamsError) and exc.file is None:
                exc.file = str(params_path)  # a stage's check of its settings does not know which file it reads
            raise
        arrived: list[int] = []
        with _stop_signals(lambda number, frame: arrived.append(number)):
            store.commit()
            manifest.write_run_manifest(store.root)
            if recorded_by_dvc and not dvc_record.record(base_dir, stages):
                log.warning("dvc.lock not updated: the next run re-runs %s", ", ".join(stages))
        if arrived:
            log.warning(
                "%s arrived while the outputs were being swapped in; the swap was completed",
                signal.Signals(arrived[0]).name,
            )
    log.info("done: outputs in %s", store.root)


def _stages_to_run(
    verb: str, not_recorded: str | None, status: dvc_record.PendingStatus | None
) -> tuple[tuple[str, ...], bool]:
    """The stages this command runs, in order, and whether dvc.lock is to record them.

    A stage verb runs its stage (under `dvc repro`, DVC records it). `run` runs the stages
    that DVC's record says changed and those downstream of them (`survey_pipeline.dvc_record`),
    or every stage where that record does not describe these outputs or DVC cannot tell."""
    if verb != "run":
        return (verb,), False
    stage_names = tuple(stage.name for stage in GRAPH)
    reason = not_recorded
    if reason is None and status is not None:
        changed = status.changed_stages()
        if changed is not None:
            stages = dvc_record.with_downstream(changed)
            if stages:
                log.info("changed since the run dvc.lock records (or downstream of a change): %s", ", ".join(stages))
            else:
                log.info("nothing to run: every stage is up to date with its inputs (dvc.lock)")
            return stages, True
        reason = "DVC could not tell which stages changed"
    log.info("running every stage (%s)", reason)
    return stage_names, False


def _run_stage(stage, number, total, store, spec, params, base_dir) -> dict:
    from survey_pipeline import manifest

    _freeze_what_lives_on()
    module = importlib.import_module(STAGE_MODULES[stage])
    log.info("[%d/%d] %s ...", number, total, stage)
    started = time.time()
    counts = module.run(store, spec, params, base_dir) or {}
    finished = time.time()
    log.info("[%d/%d] %s done in %.1f s", number, total, stage, finished - started)
    # the stage's own dict, in which a check it deferred (survey_pipeline.gx_process) adds its counts later
    counts.update(started_at=manifest.iso(started), finished_at=manifest.iso(finished))
    return counts


_freeze_between_stages = False
"""Set by `main` as the process's own command: frozen objects are never checked for cycles again,
which a process that embeds the pipeline (or a test session) did not ask for."""


def _freeze_what_lives_on() -> None:
    """As the process's own command: collect what the earlier stages left, then move every object
    still alive (modules, spec, params: a few hundred thousand by the report) out of the garbage
    collector's way. Its full collections then
    pass over the objects made since, not again over all of them (about 1 s of CPU less in a demo run);
    a forked worker (great-expectations, figures) does not touch, and so copy, their memory."""
    if _freeze_between_stages:
        gc.collect()
        gc.freeze()


@contextmanager
def _stop_signals(handler) -> Iterator[None]:
    """Handle SIGINT and SIGTERM with `handler` inside the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    for number in STOP_SIGNALS:
        signal.signal(number, handler)
    try:
        yield
    finally:
        for number, handler_before in previous.items():
            if handler_before is not None:
                signal.signal(number, handler_before)


def _raise_interrupted(number: int, frame: object) -> None:
    """Stop the run like Ctrl-C: the exception unwinds through the staging cleanup,
    which a second signal (a scheduler's repeated SIGTERM) must not cut short."""
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise RunInterrupted(number, signal.Signals(number).name)


def _fail(exc: BaseException, code: int, debug: bool) -> int:
    if debug:
        logging.getLogger("survey_pipeline").exception("failed")
    kind = {EXIT_INPUT: "error", EXIT_FILE_SYSTEM: "file system error"}.get(code, "internal error")
    if isinstance(exc, (InputError, OutputWriteError)):
        message = exc.one_line()
    else:
        message = f"{type(exc).__name__}: {exc}"
    first_line = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    print(f"survey-pipeline: {kind}: {escape(first_line)}", file=sys.stderr)
    if code == EXIT_INTERNAL and not debug:
        print("survey-pipeline: rerun with --debug for the traceback", file=sys.stderr)
    return code


class OneLineFormatter(logging.Formatter):
    """Escapes each record's message, where file names, column names and labels from
    input files end up, so every record is one line and input cannot forge another.
    Only a traceback (`--debug`) spans lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        escaped = logging.makeLogRecord(record.__dict__)
        escaped.message = escape(record.message)
        return super().formatMessage(escaped)


def _configure_logging(stream: TextIO, *, debug: bool, quiet: bool) -> None:
    """Short progress lines on a terminal; timestamped plain logs for scheduled runs."""
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(stream)
    if stream.isatty():
        handler.setFormatter(OneLineFormatter("\u25b8 %(message)s"))
    else:
        handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger("survey_pipeline")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    for noisy in ("great_expectations", "matplotlib", "fontTools"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
