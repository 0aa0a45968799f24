"""The ``synthetic-exporter`` command line.

Exit status: 0 ok; 1 a check failed (``run``) or a check file has errors (``validate``);
2 usage, settings or load errors (``run``, ``list``, ``serve``); 5 ``run`` collected no test,
as pytest. A setting that cannot be used is reported before anything starts, on one line
naming it, with no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
from loguru import logger

from synthetic_exporter.app.eventloop import backend_options
from synthetic_exporter.app.serve import serve
from synthetic_exporter.app.shutdown import cancel_on_signal
from synthetic_exporter.app.startup_checks import (
    ListenError,
    StartupError,
    check_ca_bundles,
    check_checks_path,
    check_client_certificates,
    check_ledger,
    check_otlp_endpoint,
    output_file_problem,
)
from synthetic_exporter.app.statedir import StateDirError, hold_state_dir
from synthetic_exporter.app.web_config import WebConfig
from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.core.durations import parse_duration
from synthetic_exporter.core.logs import configure_logging
from synthetic_exporter.core.results import ARTIFACTS_DIR, RunResult
from synthetic_exporter.core.settings import (
    ENV_PREFIX,
    Settings,
    SettingsError,
    listen_address,
    load_settings,
    unknown_variable_warnings,
)
from synthetic_exporter.core.version import __version__
from synthetic_exporter.engine.assertions import import_helpers_from
from synthetic_exporter.engine.coordinator import new_run_id
from synthetic_exporter.engine.loader import LoadResult, load, without_secret_names
from synthetic_exporter.engine.selection import (
    Expression,
    ExpressionError,
    parse_expression,
    select,
)
from synthetic_exporter.engine.shard import suites_for_shard
from synthetic_exporter.engine.wiring import (
    KeepingFanout,
    run_once,
    secret_variables,
)
from synthetic_exporter.exporter import artifacts
from synthetic_exporter.exporter.failure_log import FailureLogger
from synthetic_exporter.exporter.report import (
    ConsoleReporter,
    format_load_errors,
    plural,
    use_colour,
    write_json,
    write_junit,
)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_TESTS = 0, 1, 2, 5
STOPPED_BY_X = "stopped after the first failure (-x)"
INVALID_SETTINGS = "synthetic-exporter: invalid settings:"


class UsageError(Exception):
    """A command-line mistake: reported on one line, exit status 2."""


def port_number(text: str) -> int:
    """Parse a TCP port (0-65535) for argparse."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: use 0-65535 (0: a free one)")
    return int(text)


def global_options() -> argparse.ArgumentParser:
    """Return the global options again, for after the subcommand (``run --checks d``).

    Their default is SUPPRESS, so that an option given before the subcommand is kept.
    """
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--checks", type=Path, default=argparse.SUPPRESS, help="checks directory or file"
    )
    options.add_argument(
        "--env-file", type=Path, default=argparse.SUPPRESS, help="read SYNTHETIC_* settings here"
    )
    return options


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    parser = argparse.ArgumentParser(
        prog="synthetic-exporter",
        description="Run end-to-end checks on an interval and export them as Prometheus metrics.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--checks", type=Path, help="checks directory or file (default: SYNTHETIC_CHECKS_PATH)"
    )
    common = global_options()
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="read SYNTHETIC_* settings from this dotenv file (the environment wins)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run", help="run the checks once and report, like pytest", parents=[common]
    )
    run.add_argument("--once", action="store_true", help="run once and exit (the only mode)")
    run.add_argument(
        "--suite",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this suite and what it depends on (repeatable)",
    )
    run.add_argument(
        "-k",
        dest="keywords",
        metavar="EXPR",
        help="run only tests whose suite/test name or tags match EXPR (as pytest -k)",
    )
    run.add_argument(
        "-m", dest="tags", metavar="TAG_EXPR", help="run only suites whose tags match TAG_EXPR"
    )
    run.add_argument(
        "-x", "--exitfirst", action="store_true", help="stop after the first failed test"
    )
    run.add_argument("-v", "--verbose", action="count", default=0, help="more output per test")
    run.add_argument(
        "-q", "--quiet", action="count", default=0, help="less: only tests that did not pass"
    )
    run.add_argument(
        "--color",
        choices=("yes", "no", "auto"),
        default="auto",
        help="colour the outcomes (auto: on a terminal, unless NO_COLOR is set)",
    )
    run.add_argument("--junit-xml", type=Path, metavar="PATH", help="write JUnit XML here")
    run.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON here")
    commands.add_parser(
        "serve", help="run the agent: scheduler, /metrics, /healthz, API", parents=[common]
    )
    demo = commands.add_parser(
        "demo",
        help="run the embedded demo API on 127.0.0.1 and the agent against it",
        parents=[common],
    )
    demo.add_argument(
        "--api-port", type=port_number, default=0, help="demo API port (0: a free one)"
    )
    demo.add_argument(
        "--interval",
        default="15s",
        help="the default interval in the demo (suites that set their own keep it)",
    )
    commands.add_parser(
        "list", help="list suites, tests, dependencies and intervals", parents=[common]
    )
    commands.add_parser(
        "validate", help="load the checks and report errors (exit 1 on any)", parents=[common]
    )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if args.checks is not None:
        overrides["checks_path"] = args.checks
    return load_settings(**overrides)


def cmd_validate(settings: Settings, loaded: LoadResult) -> int:
    """Print load errors and warnings; return 1 if there are errors."""
    sys.stderr.write(format_load_errors(loaded.errors))
    sys.stderr.write("".join(f"{w}\n" for w in loaded.warnings))
    tests = sum(len(s.tests) for s in loaded.suites.values())
    suites, errors = plural(len(loaded.suites), "suite"), plural(len(loaded.errors), "error")
    print(f"{suites}, {plural(tests, 'test')} loaded, {errors}")
    return EXIT_FAILED if loaded.errors else EXIT_OK


def cmd_list(settings: Settings, loaded: LoadResult) -> int:
    """Print every suite with its tests, dependencies and interval."""
    sys.stderr.write(format_load_errors(loaded.errors))
    for suite in loaded.suites.values():
        interval = suite.interval or settings.interval
        deps = f" depends on {', '.join(suite.depends_on)}" if suite.depends_on else ""
        tags = f" tags {', '.join(suite.tags)}" if suite.tags else ""
        print(f"{suite.name} (every {interval:g}s{deps}{tags})")
        for test in suite.tests:
            print(f"  {suite.name}/{test.name}")
    return EXIT_USAGE if loaded.errors else EXIT_OK


async def _run_with_signals(
    settings: Settings,
    suites: Mapping[str, Suite],
    names: list[str],
    collector: KeepingFanout,
    exitfirst: bool,
) -> bool:
    """Run once; return True when a signal interrupted the run."""
    stopped: list[int] = []
    stop_after_failure = STOPPED_BY_X if exitfirst else None
    async with anyio.create_task_group() as group:
        group.start_soon(cancel_on_signal, group.cancel_scope, settings.shutdown_grace, stopped)
        await run_once(settings, suites, names, collector, stop_after_failure)
        group.cancel_scope.cancel()
    return bool(stopped)


def selected_suites(loaded: LoadResult, args: argparse.Namespace) -> dict[str, Suite]:
    """Return the suites ``--suite``, ``-k`` and ``-m`` select, narrowed to their tests."""
    unknown = [n for n in args.suite if n not in loaded.suites]
    if unknown:
        known = ", ".join(loaded.suites) or "none"
        raise UsageError(f"unknown suite {unknown[0]!r} (loaded: {known})")
    candidates = {n: loaded.suites[n] for n in args.suite or loaded.suites}
    return select(candidates, _expression("-k", args.keywords), _expression("-m", args.tags))


def _expression(option: str, text: str | None) -> Expression | None:
    """Parse a ``-k`` / ``-m`` expression; a malformed one is a usage error naming the option."""
    if text is None:
        return None
    try:
        return parse_expression(text)
    except ExpressionError as exc:
        raise UsageError(f"{option} {text!r}: {exc}") from None


def cmd_run(settings: Settings, loaded: LoadResult, args: argparse.Namespace) -> int:
    """Run suites once with live output; write reports; return the exit status."""
    selected = selected_suites(loaded, args)
    sys.stderr.write(format_load_errors(loaded.errors))
    reporter = ConsoleReporter(
        sys.stdout,
        verbosity=args.verbose - args.quiet,
        colour=use_colour(args.color, sys.stdout, os.environ),
    )
    collector = KeepingFanout([reporter, FailureLogger()])
    suites = {**loaded.suites, **selected}
    started = time.time()
    # No history keeps these runs: earlier runs' artifacts go by the history's retention.
    artifacts.remove_older_than(
        settings.state_dir / ARTIFACTS_DIR, settings.history_retention, started
    )
    interrupted = anyio.run(
        _run_with_signals,
        settings,
        suites,
        list(selected),
        collector,
        args.exitfirst,
        backend_options=backend_options(),
    )
    run = RunResult(
        run_id=new_run_id(),
        suites=tuple(collector.suites),
        started_at=started,
        ended_at=time.time(),
        load_errors=loaded.errors,
    )
    sys.stdout.write(reporter.summary(run))
    write_reports(run, args)
    if interrupted:
        print("interrupted: running tests were cancelled and their cleanups ran")
        return EXIT_OK
    if loaded.errors:
        return EXIT_USAGE
    if not run.all_tests:
        return EXIT_NO_TESTS
    return EXIT_OK if run.ok else EXIT_FAILED


def report_paths(args: argparse.Namespace) -> dict[str, Path]:
    """Return the report files ``run`` was asked to write, by option."""
    paths = {"--json": args.json, "--junit-xml": args.junit_xml}
    return {option: path for option, path in paths.items() if path is not None}


def check_report_paths(args: argparse.Namespace) -> None:
    """Refuse report paths that cannot be written, before the run rather than after it."""
    for option, path in report_paths(args).items():
        problem = output_file_problem(path)
        if problem is not None:
            raise UsageError(f"{option}: {problem}")


def write_reports(run: RunResult, args: argparse.Namespace) -> None:
    """Write the JSON and JUnit reports that were asked for."""
    writers = {"--json": write_json, "--junit-xml": write_junit}
    for option, path in report_paths(args).items():
        try:
            writers[option](run, path)
        except OSError as exc:
            raise UsageError(f"{option}: cannot write {path}: {exc.strerror}") from None


def select_shard(settings: Settings, loaded: LoadResult) -> LoadResult:
    """Keep only this replica's suites when ``SYNTHETIC_SHARD`` is set."""
    if settings.shard is None:
        return loaded
    shard = settings.shard
    suites = suites_for_shard(loaded.suites, shard.index, shard.total)
    return LoadResult(suites, loaded.errors, loaded.warnings)


def _announce(url: str) -> None:
    print(f"synthetic-exporter listening on {url}", flush=True)


def web_config(settings: Settings) -> WebConfig | None:
    """Load and check ``SYNTHETIC_WEB_CONFIG_FILE`` (certificates, keys, hashes), if set."""
    if settings.web_config_file is None:
        return None
    from synthetic_exporter.app.web_config import WebConfigError, load_web_config

    try:
        return load_web_config(settings.web_config_file)
    except WebConfigError as exc:
        raise StartupError("SYNTHETIC_WEB_CONFIG_FILE", str(exc)) from None


def cmd_serve(settings: Settings, loaded: LoadResult, web: WebConfig | None) -> int:
    """Run the agent until SIGTERM or SIGINT."""
    sys.stderr.write(format_load_errors(loaded.errors))
    anyio.run(serve, settings, loaded, None, _announce, web, backend_options=backend_options())
    return EXIT_OK


def cmd_demo(settings: Settings, loaded: LoadResult, args: argparse.Namespace) -> int:
    """Run the demo API and the agent on 127.0.0.1, printing the URLs to open."""
    try:
        interval = parse_duration(args.interval)
    except ValueError as exc:
        raise UsageError(f"--interval: {exc}") from None
    from synthetic_exporter.demo.run import run_demo  # the demo's servers load only for it

    sys.stderr.write(format_load_errors(loaded.errors))
    try:
        anyio.run(
            run_demo, settings, loaded, args.api_port, interval, backend_options=backend_options()
        )
    except (ListenError, BaseExceptionGroup) as exc:
        error = listen_error(exc)
        if error is None:
            raise
        _, agent_port = listen_address(settings)
        if error.port == args.api_port != 0 and error.port != agent_port:
            raise StartupError("--api-port", str(error)) from None
        raise error from None
    return EXIT_OK


def listen_error(exc: BaseException) -> ListenError | None:
    """Return the ListenError that ``exc`` is, or is the only member of (a task group's)."""
    if isinstance(exc, ListenError):
        return exc
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return listen_error(exc.exceptions[0])
    return None


def invalid_setting(variable: str, message: str) -> int:
    """Report a setting that cannot be used, in the format of settings errors; return 2."""
    sys.stderr.write(f"{INVALID_SETTINGS}\n{variable}: {message}\n")
    return EXIT_USAGE


def apply_env_file(path: Path) -> None:
    """Set the ``SYNTHETIC_*`` variables of a dotenv file that the environment does not set.

    Other variables of the file are left alone (the file may be shared with other tools).
    """
    from dotenv import dotenv_values  # pydantic-settings' own dotenv reader

    if not path.is_file():
        raise UsageError(f"--env-file: {path}: no such file")
    present = {key.upper() for key in os.environ}
    for key, value in dotenv_values(path).items():
        if key.upper().startswith(ENV_PREFIX) and key.upper() not in present and value is not None:
            os.environ[key] = value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    if args.env_file is not None:
        try:
            apply_env_file(args.env_file)
        except UsageError as exc:
            sys.stderr.write(f"synthetic-exporter: error: {exc}\n")
            return EXIT_USAGE
    for line in unknown_variable_warnings():
        sys.stderr.write(f"{line}\n")
    try:
        settings = _settings(args)
    except SettingsError as exc:
        sys.stderr.write(f"{INVALID_SETTINGS}\n{exc}\n")
        return EXIT_USAGE
    configure_logging(settings.log_format, settings.log_level)
    try:
        return _run_command(args, settings)
    except UsageError as exc:
        sys.stderr.write(f"synthetic-exporter: error: {exc}\n")
        return EXIT_USAGE
    except StartupError as exc:
        return invalid_setting(exc.variable, str(exc))
    except StateDirError as exc:
        return invalid_setting("SYNTHETIC_STATE_DIR", str(exc))
    except ListenError as exc:
        return invalid_setting("SYNTHETIC_LISTEN", str(exc))


def _run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Check what start-up needs, load the checks and run the command."""
    if args.command == "run":
        check_report_paths(args)
    checks_variable = "--checks" if args.checks is not None else "SYNTHETIC_CHECKS_PATH"
    check_checks_path(settings.checks_path, checks_variable)
    web = web_config(settings) if args.command == "serve" else None
    if args.command in ("run", "serve", "demo"):
        check_ca_bundles(settings)
        check_client_certificates(settings)
    if args.command in ("serve", "demo"):
        check_otlp_endpoint(settings)
    path = settings.checks_path
    import_helpers_from(path if path.is_dir() else path.parent)
    loaded = without_secret_names(load(settings.checks_path), secret_variables(settings))
    loaded = select_shard(settings, loaded)
    if args.command == "validate":
        return cmd_validate(settings, loaded)
    for warning in loaded.warnings:
        logger.warning(str(warning))
    if args.command == "list":
        return cmd_list(settings, loaded)
    with hold_state_dir(settings.state_dir):
        check_ledger(settings)
        if args.command == "serve":
            return cmd_serve(settings, loaded, web)
        if args.command == "demo":
            return cmd_demo(settings, loaded, args)
        return cmd_run(settings, loaded, args)


def entry_point() -> None:
    """Console-script entry: exit with :func:`main`'s status."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
