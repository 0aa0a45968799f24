"""The Dockerfile and .dockerignore, checked without a Docker engine (none runs here).

The Dockerfile is parsed with BuildKit's own parser (the ``dockerfile`` package) and its
stages and instructions are asserted on; the build context that .dockerignore lets through is
checked against what the Dockerfile copies, and the builder stage's wheel is built from exactly
that context. The lock files the builder installs from (requirements/*.lock) are checked against
pyproject.toml. tests/test_image.py builds the image and runs it (buildah, no Docker engine).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import dockerfile  # type: ignore[import-not-found]
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from synthetic_exporter.app.cli import build_parser
from synthetic_exporter.core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
REQUIREMENTS = ROOT / "requirements"
NONROOT_UID = 65532
PORT = 9479
BUILD_TOOLS = ("gcc", "g++", "cc", "clang", "make", "build-essential", "python3-dev", "libc6-dev")


@dataclass
class Stage:
    """One FROM ... stage: its base image (ARGs substituted), alias and instructions."""

    base: str
    alias: str | None
    commands: list[dockerfile.Command] = field(default_factory=list)

    def all(self, cmd: str) -> list[dockerfile.Command]:
        """Return this stage's instructions of one kind, in order."""
        return [c for c in self.commands if c.cmd == cmd]

    def last(self, cmd: str) -> dockerfile.Command:
        """Return this stage's last instruction of one kind (the one that takes effect)."""
        found = self.all(cmd)
        assert found, f"stage {self.alias or self.base} has no {cmd}"
        return found[-1]

    def env(self) -> dict[str, str]:
        """Return the stage's ENV variables (later ones win)."""
        result: dict[str, str] = {}
        for command in self.all("ENV"):
            pairs = command.value
            result.update(zip(pairs[::2], pairs[1::2], strict=True))
        return result


def parse_stages(path: Path = DOCKERFILE) -> list[Stage]:
    """Split the Dockerfile into stages, substituting global ARG defaults into FROM."""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m[1] or m[2]], command.value[0])
            alias = command.value[2] if len(command.value) == 3 else None
            stages.append(Stage(image, alias))
        elif not stages and command.cmd == "ARG":
            name, _, default = command.value[0].partition("=")
            args[name] = default
        else:
            assert stages, f"{command.cmd} before the first FROM"
            stages[-1].commands.append(command)
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    """The Dockerfile's stages."""
    return parse_stages()


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    """The final (runtime) stage."""
    return stages[-1]


def test_two_stages_on_the_same_python_slim_base(stages: list[Stage]) -> None:
    assert [(s.base, s.alias) for s in stages] == [
        ("python:3.11-slim", "builder"),
        ("python:3.11-slim", None),
    ]


def test_builder_installs_the_locks_then_the_wheel_into_a_venv(stages: list[Stage]) -> None:
    builder = stages[0]
    script = " ".join(" ".join(c.value) for c in builder.all("RUN"))
    script = re.sub(r"\s+", " ", script)
    assert "python -m venv /opt/venv" in script
    # Dependencies only from the lock files, every file hash-checked.
    assert (
        "/opt/build/bin/pip install --quiet --require-hashes -r requirements/build.lock" in script
    )
    runtime_lock = '-r "requirements/runtime${EXTRAS:+-$EXTRAS}${BROWSER:+-browser}.lock"'
    assert f"/opt/venv/bin/pip install --quiet --require-hashes {runtime_lock}" in script
    # The wheel with the locked setuptools, installed without resolving anything more.
    assert "pip wheel --no-build-isolation --no-deps --wheel-dir /wheels ." in script
    assert '/opt/venv/bin/pip install --no-deps "${wheel}"' in script
    assert "/opt/venv/bin/pip check" in script
    # The demo's generated client (it needs attrs) only when EXTRAS names demo.
    drop = "rm -r /opt/venv/lib/python3*/site-packages/synthetic_exporter/demo/client"
    assert f'case ",${{EXTRAS}}," in *,demo,*) ;; *) {drop} ;; esac' in script
    # The wheel by its file name, never by project name (a same-named package on PyPI).
    assert 'wheel="$(echo /wheels/synthetic_exporter-*.whl)"' in script
    copies = [c.value for c in builder.all("COPY")]
    assert ("requirements/", "requirements/") in copies
    assert ("wheelhouse/", "/wheelhouse/") in copies
    assert builder.env()["PIP_FIND_LINKS"] == "/wheelhouse"
    no_index = next(c for c in builder.all("ARG") if c.value[0].startswith("PIP_NO_INDEX="))
    assert no_index.value[0] == "PIP_NO_INDEX=0", "by default a build may use the index"


def global_args(path: Path = DOCKERFILE) -> dict[str, str]:
    """The ARGs declared before the first FROM, with their defaults."""
    defaults: dict[str, str] = {}
    for command in dockerfile.parse_file(str(path)):
        if command.cmd == "FROM":
            break
        if command.cmd == "ARG":
            name, _, default = command.value[0].partition("=")
            defaults[name] = default
    return defaults


def image_extras() -> list[str]:
    """The package extras the image installs by default (ARG EXTRAS)."""
    return [extra for extra in global_args()["EXTRAS"].split(",") if extra]


def test_extras_are_the_package_s3_extra() -> None:
    """The image installs the s3 extra by default (S3 storage checks need boto3)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = image_extras()
    assert extras == ["s3"]
    assert set(extras) <= set(project["optional-dependencies"])


def lock_path(extras: list[str]) -> Path:
    """The lock file the builder installs for an EXTRAS value (as its RUN names it)."""
    return REQUIREMENTS / f"runtime{''.join('-' + e for e in extras)}.lock"


def read_lock(path: Path) -> dict[str, tuple[str, list[str]]]:
    """A hash-pinned requirements file: {canonical name: (version, [sha256 hashes])}."""
    pins: dict[str, tuple[str, list[str]]] = {}
    text = re.sub(r"\\\n", " ", path.read_text())
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line.split(" --hash=")[0].strip())
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{path.name}: {line} is not pinned"
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        pins[canonicalize_name(requirement.name)] = (specifier.version, hashes)
    return pins


def lock_requirers(path: Path) -> dict[str, set[str]]:
    """What requires each pin, from the lock's ``# via`` notes (the project: synthetic-exporter)."""
    requirers: dict[str, set[str]] = {}
    current = ""
    for line in path.read_text().splitlines():
        pin = re.match(r"([A-Za-z0-9._-]+)==", line)
        if pin:
            current = canonicalize_name(pin[1])
            requirers[current] = set()
            continue
        via = re.match(r"\s*#\s+(?:via\s+)?(\S+)", line)
        if current and via and via[1] != "via":
            requirers[current].add(canonicalize_name(via[1]))
    return requirers


def linux_py311(requirement: Requirement, extra: str = "") -> bool:
    """Whether a requirement applies in the image (Linux, CPython 3.11)."""
    environment = {"sys_platform": "linux", "platform_system": "Linux", "extra": extra}
    environment |= {"python_version": "3.11", "implementation_name": "cpython"}
    return requirement.marker is None or requirement.marker.evaluate(environment)


@pytest.mark.parametrize(
    "extras",
    [[], ["s3"], ["browser"], ["s3", "browser"]],
    ids=["no-extras", "s3", "browser", "s3-browser"],
)
def test_lock_pins_every_runtime_dependency_of_pyproject(extras: list[str]) -> None:
    """Every dependency (and extra) of pyproject.toml is pinned, within its range, with hashes.

    Fails when pyproject.toml's dependencies change and the locks were not refreshed (make lock).
    """
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        wanted += [Requirement(r) for r in project["optional-dependencies"][extra]]
    pins = read_lock(lock_path(extras))
    assert all(hashes for _, hashes in pins.values()), "a pin without --hash"
    for requirement in wanted:
        if not linux_py311(requirement):
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {lock_path(extras).name}: make lock"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"{lock_path(extras).name} pins {name}=={version}, pyproject wants {requirement}"
        )
    if "s3" not in extras:
        assert "boto3" not in pins, "the image without extras must not carry boto3"
    if "browser" not in extras:
        assert "playwright" not in pins, "only the browser variant carries Playwright"
    # No stale pins: what the project itself requires is one of its dependencies, and everything
    # else is required by another pin (a dependency dropped from pyproject.toml leaves the lock).
    direct = {canonicalize_name(r.name) for r in wanted}
    for pinned, requirers in lock_requirers(lock_path(extras)).items():
        assert requirers, f"{pinned} in {lock_path(extras).name} has no '# via' note"
        assert requirers <= set(pins) | {"synthetic-exporter"}, (pinned, requirers)
        if "synthetic-exporter" in requirers:
            assert pinned in direct, f"{pinned} is no dependency of pyproject.toml now: make lock"


def test_build_lock_pins_the_build_backend() -> None:
    """requirements/build.lock pins pyproject's [build-system] requires, with hashes."""
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    pins = read_lock(REQUIREMENTS / "build.lock")
    for line in build["requires"]:
        requirement = Requirement(line)
        version, hashes = pins[canonicalize_name(requirement.name)]
        assert hashes
        assert requirement.specifier.contains(version), (requirement, version)


def test_final_stage_copies_only_the_venv_from_the_builder(final: Stage) -> None:
    from_builder = [c for c in final.all("COPY") if any(f.startswith("--from") for f in c.flags)]
    assert [(c.flags, c.value) for c in from_builder] == [
        (("--from=builder",), ("/opt/venv", "/opt/venv"))
    ]
    assert not final.all("ADD")
    assert final.env()["PATH"].startswith("/opt/venv/bin:")


def test_final_stage_runs_as_the_nonroot_uid(final: Stage) -> None:
    user = final.last("USER").value[0]
    uid = user.split(":")[0]
    assert uid == str(NONROOT_UID), "a numeric non-root USER (runAsNonRoot can verify it)"
    script = " ".join(" ".join(c.value) for c in final.all("RUN"))
    assert f"--uid {NONROOT_UID}" in script
    assert "/var/lib/synthetic-exporter" in script, "the state dir must be writable by the user"


BROWSER_PACKAGES = (
    "apt-get install -y -qq --no-install-recommends chromium fonts-liberation libatomic1"
)


def test_final_stage_installs_no_compilers(final: Stage) -> None:
    for command in final.all("RUN"):
        text = re.sub(r"\s+", " ", " ".join(command.value))
        if BROWSER_PACKAGES in text:  # the browser variant's Chromium, and nothing else
            assert text.startswith('if [ -n "${BROWSER}" ] && ! command -v chromium'), text
            assert text.count("apt-get install") == 1, text
        else:
            assert "apt-get install" not in text, text
        assert "apk add" not in text, text
        for tool in BUILD_TOOLS:
            word = rf"(?<![\w.+-]){re.escape(tool)}(?![\w.+-])"
            assert not re.search(word, text), f"{tool!r} in the final stage: {text}"


def test_workdir_checks_env_port_and_entrypoint(final: Stage) -> None:
    assert final.last("WORKDIR").value == ("/app",)
    copies = [c.value for c in final.all("COPY") if not c.flags]
    assert ("checks/", "/app/checks/") in copies
    env = final.env()
    assert env["SYNTHETIC_CHECKS_PATH"] == "/app/checks"
    assert env["SYNTHETIC_STATE_DIR"] == "/var/lib/synthetic-exporter"
    assert env["SYNTHETIC_LISTEN"] == f"0.0.0.0:{PORT}"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "checks dir and root filesystem are read-only"
    assert final.last("EXPOSE").value == (str(PORT),)
    entrypoint, cmd = final.last("ENTRYPOINT"), final.last("CMD")
    assert entrypoint.json, "exec form"
    assert entrypoint.value == ("synthetic-exporter",)
    assert cmd.json, "exec form"
    assert cmd.value == ("serve",)


def test_env_names_are_agent_settings(final: Stage) -> None:
    fields = {f"SYNTHETIC_{name.upper()}" for name in Settings.model_fields}
    synthetic = {name for name in final.env() if name.startswith("SYNTHETIC_")}
    assert synthetic <= fields


def test_entrypoint_and_command_exist() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    entry = project["project"]["scripts"]["synthetic-exporter"]
    assert entry == "synthetic_exporter.app.cli:entry_point"
    args = build_parser().parse_args(["serve"])
    assert args.command == "serve"


def test_oci_labels(final: Stage) -> None:
    labels: dict[str, str] = {}
    for command in final.all("LABEL"):
        pairs = command.value
        labels.update((k, v.strip('"')) for k, v in zip(pairs[::2], pairs[1::2], strict=True))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert labels["org.opencontainers.image.title"] == "synthetic-exporter"
    assert labels["org.opencontainers.image.licenses"] == project["license"]
    for key in ("description", "version", "revision", "created"):
        assert labels[f"org.opencontainers.image.{key}"], key
    version_arg = next(c for c in final.all("ARG") if c.value[0].startswith("VERSION="))
    assert version_arg.value[0] == f"VERSION={project['version']}"


def test_image_port_and_paths_match_the_chart(final: Stage) -> None:
    chart = ROOT / "helm" / "synthetic-exporter"
    values = yaml.safe_load((chart / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == NONROOT_UID
    helpers = (chart / "templates" / "_helpers.tpl").read_text()
    assert f"containerPort: {PORT}" in helpers
    assert "mountPath: /app/checks" in helpers
    assert f"mountPath: {final.env()['SYNTHETIC_STATE_DIR']}" in helpers


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Translate a .dockerignore pattern (Go filepath.Match plus **) to a regex."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out)


def dockerignore_rules(path: Path = DOCKERIGNORE) -> list[tuple[bool, re.Pattern[str]]]:
    """Return (exclude, regex) rules in file order."""
    rules = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        rules.append((exclude, _pattern_regex(pattern)))
    return rules


def in_context(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether a path is sent to the builder: the last rule matching it or a parent wins."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for exclude, regex in rules:
        if any(regex.fullmatch(p) for p in prefixes):
            excluded = exclude
    return not excluded


def context_files() -> list[str]:
    """The git-tracked and new (not ignored) files that .dockerignore lets into the context."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    rules = dockerignore_rules()
    return sorted(f for f in listed if (ROOT / f).is_file() and in_context(f, rules))


def test_dockerignore_matcher() -> None:
    rules = dockerignore_rules()
    assert in_context("pyproject.toml", rules)
    assert in_context("synthetic_exporter/app/cli.py", rules)
    assert not in_context("synthetic_exporter/__pycache__/cli.cpython-311.pyc", rules)
    assert not in_context("checks/__pycache__/signup.cpython-311.pyc", rules)
    assert not in_context(".venv/bin/python", rules)
    assert not in_context("tests/app/test_cli.py", rules)
    assert in_context("requirements/runtime-s3.lock", rules)
    assert in_context("wheelhouse/boto3-1.0-py3-none-any.whl", rules)
    assert not in_context(".cache/image/storage/vfs/dir", rules)


def test_context_holds_what_the_dockerfile_copies_and_nothing_else(stages: list[Stage]) -> None:
    files = context_files()
    sources = [c.value[:-1] for s in stages for c in s.all("COPY") if not c.flags]
    for source in (src.rstrip("/") for group in sources for src in group):
        assert any(f == source or f.startswith(source + "/") for f in files), source
    tops = {f.split("/")[0] for f in files}
    assert tops == {
        "pyproject.toml",
        "README.md",
        "synthetic_exporter",
        "checks",
        "requirements",
        "wheelhouse",
    }


@pytest.mark.slow
def test_builder_wheel_builds_from_the_context(tmp_path: Path) -> None:
    """Run the builder stage's `pip wheel` on exactly the files the context would hold."""
    context = tmp_path / "context"
    for name in context_files():
        target = context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(wheels),
            ".",
        ],
        cwd=context,
        check=True,
        timeout=110,
        capture_output=True,
    )
    (wheel,) = wheels.glob("synthetic_exporter-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    package = [f for f in context_files() if f.startswith("synthetic_exporter/")]
    missing = sorted(set(package) - set(names))
    assert not missing, f"files of the package missing from the wheel (package-data?): {missing}"
    assert "synthetic_exporter/py.typed" in names
    assert "synthetic-exporter = synthetic_exporter.app.cli:entry_point" in scripts
    assert not any(n.startswith(("tests/", "checks/")) for n in names)


@pytest.mark.slow
def test_baked_in_checks_load(tmp_path: Path) -> None:
    """`synthetic-exporter validate` loads the checks the image copies to /app/checks."""
    result = subprocess.run(
        [sys.executable, "-m", "synthetic_exporter", "--checks", str(ROOT / "checks"), "validate"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 errors" in result.stdout


def imported_modules(directory: Path, skip: frozenset[Path] = frozenset()) -> set[str]:
    """Top-level names of the absolute imports in every .py file under a directory."""
    names: set[str] = set()
    for path in set(directory.rglob("*.py")) - skip:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_baked_in_checks_import_only_what_the_image_installs() -> None:
    """Every module the example checks import is in the image's venv (runtime deps + EXTRAS).

    The dev venv has far more installed than the image, so `validate` passing here proves
    nothing about the image: this compares the checks' imports with the distributions the
    image's lock file (for its default EXTRAS) installs, plus the project itself.
    """
    checks = ROOT / "checks"
    local = {p.stem for p in checks.glob("*.py")} | {p.name for p in checks.iterdir() if p.is_dir()}
    browser_checks = frozenset(checks.glob("browser_*.py"))  # the browser variant only (BROWSER=1)
    plain = imported_modules(checks, skip=browser_checks) - set(sys.stdlib_module_names) - local
    browser = imported_modules(checks) - set(sys.stdlib_module_names) - local
    providers = importlib.metadata.packages_distributions()
    for modules, extras in ((plain, image_extras()), (browser, [*image_extras(), "browser"])):
        in_image = set(read_lock(lock_path(extras))) | {"synthetic-exporter"}
        missing = sorted(
            module
            for module in modules
            if not {canonicalize_name(d) for d in providers.get(module, [])} & in_image
        )
        assert not missing, (
            f"checks/ imports {missing}, which the image ({lock_path(extras).name}) does not "
            "install: add them to the project's dependencies (pyproject.toml), then make lock"
        )


def test_only_the_browser_variant_keeps_the_browser_examples(final: Stage) -> None:
    """Without BROWSER, checks/browser_*.py (Playwright) are removed: they would not load."""
    script = [re.sub(r"\s+", " ", " ".join(c.value)) for c in final.all("RUN")]
    assert '[ -n "${BROWSER}" ] || rm -f /app/checks/browser_*.py' in script
    assert list((ROOT / "checks").glob("browser_*.py")), "the browser example is checks/browser_*"
    assert "BROWSER" in global_args()
    assert global_args()["BROWSER"] == "", "the default image has no browser"
