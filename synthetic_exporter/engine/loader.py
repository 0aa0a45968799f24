"""Load suites from check files: every ``*.py`` under the checks path.

Whatever goes wrong is a :class:`LoadError` with file and line, and everything else still
loads: a file that fails to import, a duplicate suite name, an unknown dependency or a
dependency cycle (the suites involved, and their dependents, are left out).
"""

from __future__ import annotations

import difflib
import hashlib
import inspect
import sys
import traceback
import types
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from synthetic_exporter.authoring.suite import Suite
from synthetic_exporter.browser import MISSING, playwright_installed, uses_page
from synthetic_exporter.core.logs import MIN_SECRET_LENGTH, redact
from synthetic_exporter.core.results import LoadError
from synthetic_exporter.engine.assertions import compile_check_file

MODULE_PREFIX = "synthetic_checks"


@dataclass(frozen=True, slots=True)
class LoadWarning:
    """A likely mistake in a check file that does not stop it loading."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: warning: {self.message}"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """The suites that loaded, by name in load order, what failed to load, and warnings."""

    suites: dict[str, Suite]
    errors: tuple[LoadError, ...]
    warnings: tuple[LoadWarning, ...] = ()


def check_files(path: Path) -> list[Path]:
    """Return the check files under ``path`` (or ``path`` itself), sorted, skipping private ones."""
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*.py")
        if not any(part.startswith(("_", ".")) for part in p.relative_to(path).parts)
    )


def _module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    return f"{MODULE_PREFIX}.{path.stem}_{digest}"


def _error_line(exc: BaseException, path: Path) -> int:
    if isinstance(exc, SyntaxError) and exc.lineno:
        return exc.lineno
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return frames[-1].lineno or 0 if frames else 0


def unregistered_tests(module: types.ModuleType, path: Path) -> list[LoadWarning]:
    """Warn of ``test_*`` functions defined at the top of ``module`` that no suite registered."""
    namespace = vars(module)
    suites = [v for v in namespace.values() if isinstance(v, Suite)]
    registered = {id(t.func) for s in suites for t in s.tests}
    own = [n for n, v in namespace.items() if isinstance(v, Suite) and v.file == str(path)]
    decorator = f"@{own[0]}.test" if own else "@<suite>.test"
    return [
        LoadWarning(
            str(path),
            value.__code__.co_firstlineno,
            f"{name} is not registered with a suite (decorate it with {decorator})",
        )
        for name, value in namespace.items()
        if name.startswith("test_")
        and inspect.isfunction(value)
        and value.__code__.co_filename == str(path)
        and id(value) not in registered
    ]


def load_file(path: Path) -> tuple[list[Suite], LoadError | None]:
    """Import one check file and return the suites it defines (or the error)."""
    suites, error, _ = load_file_with_warnings(path)
    return suites, error


def load_file_with_warnings(
    path: Path,
) -> tuple[list[Suite], LoadError | None, list[LoadWarning]]:
    """Import one check file; return the suites it defines (or the error) and its warnings."""
    name = _module_name(path)
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules.setdefault(MODULE_PREFIX, types.ModuleType(MODULE_PREFIX))
    sys.modules[name] = module
    try:
        code = compile_check_file(path, path.read_bytes())
        exec(code, module.__dict__)
    except BaseException as exc:  # SystemExit or KeyboardInterrupt in a check file is its error
        sys.modules.pop(name, None)
        message = f"{type(exc).__name__}: {exc}"
        return [], LoadError(str(path), _error_line(exc, path), message), []
    # Suites defined in this file, each once: not those it imported, not a second name for one.
    found = {id(v): v for v in vars(module).values() if isinstance(v, Suite)}
    suites = [s for s in found.values() if s.file == str(path)]
    missing = browser_missing(suites, path)
    if missing is not None:
        sys.modules.pop(name, None)
        return [], missing, []
    return suites, None, unregistered_tests(module, path)


def browser_missing(suites: list[Suite], path: Path) -> LoadError | None:
    """Return the error of a file whose test uses ``t.page()`` when Playwright is missing."""
    tests = [(s, t) for s in suites for t in s.tests if uses_page(t.func)]
    if not tests or playwright_installed():
        return None
    suite, test = tests[0]
    return LoadError(str(path), test.line, f"test {suite.name}/{test.name} {MISSING}")


def _did_you_mean(name: str, known: list[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest of ``known``, or ``""``."""
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _find_cycles(suites: dict[str, Suite]) -> set[str]:
    """Return the names of suites that are on a dependency cycle."""
    on_cycle: set[str] = set()
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for dep in suites[name].depends_on:
            if dep not in suites:
                continue
            if state.get(dep) == 1:
                on_cycle.update(stack[stack.index(dep) :])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[name] = 2

    for name in suites:
        if name not in state:
            visit(name)
    return on_cycle


def resolve(candidates: list[Suite]) -> LoadResult:
    """Check names and dependencies of loaded suites; drop the broken ones with an error each."""
    errors: list[LoadError] = []
    suites: dict[str, Suite] = {}
    names = list(dict.fromkeys(s.name for s in candidates))
    for suite in candidates:
        if suite.name in suites:
            first = suites[suite.name]
            errors.append(
                LoadError(
                    suite.file,
                    suite.line,
                    f"duplicate suite name {suite.name!r} (first defined at"
                    f" {first.file}:{first.line})",
                )
            )
            continue
        suites[suite.name] = suite
    for name in sorted(_find_cycles(suites)):
        suite = suites.pop(name)
        errors.append(LoadError(suite.file, suite.line, f"suite {name!r} is on a dependency cycle"))
    changed = True
    while changed:
        changed = False
        for name, suite in list(suites.items()):
            missing = [d for d in suite.depends_on if d not in suites]
            if missing:
                del suites[name]
                changed = True
                unknown = "" if missing[0] in names else _did_you_mean(missing[0], names)
                errors.append(
                    LoadError(
                        suite.file,
                        suite.line,
                        f"suite {name!r} depends on unknown or unloadable suite"
                        f" {missing[0]!r}{unknown}",
                    )
                )
    return LoadResult(suites, tuple(errors))


def without_secret_names(loaded: LoadResult, secrets: Mapping[str, str]) -> LoadResult:
    """Drop suites whose name, tags or test names contain a secret's value, with an error each.

    Such names would reach metric labels, ``/healthz``, the status page and JUnit. ``secrets``
    maps each secret's variable to its value; the error names the variable, never the value.
    """
    errors: list[LoadError] = []
    kept: list[Suite] = []
    for suite in loaded.suites.values():
        names = (suite.name, *suite.tags, *(t.name for t in suite.tests))
        leak = next(
            (
                variable
                for variable, value in secrets.items()
                if len(value) >= MIN_SECRET_LENGTH and any(value in name for name in names)
            ),
            None,
        )
        if leak is None:
            kept.append(suite)
            continue
        errors.append(
            LoadError(
                suite.file,
                suite.line,
                f"suite {redact(suite.name, secrets.values())!r}: a suite, tag or test name"
                f" contains the value of {leak}; names are published, secrets must not be",
            )
        )
    resolved = resolve(kept)
    masked = tuple(  # a dependent's error names the refused suite
        LoadError(e.file, e.line, redact(e.message, secrets.values())) for e in resolved.errors
    )
    return LoadResult(resolved.suites, (*loaded.errors, *errors, *masked), loaded.warnings)


def load(path: Path) -> LoadResult:
    """Load every check file under ``path``."""
    if not path.exists():
        return LoadResult({}, (LoadError(str(path), 0, "checks path does not exist"),))
    candidates: list[Suite] = []
    errors: list[LoadError] = []
    warnings: list[LoadWarning] = []
    for file in check_files(path):
        found, error, file_warnings = load_file_with_warnings(file)
        candidates.extend(found)
        warnings.extend(file_warnings)
        if error is not None:
            errors.append(error)
    resolved = resolve(candidates)
    return LoadResult(resolved.suites, (*errors, *resolved.errors), tuple(warnings))
