"""An app's process types and their instances: names, the Procfile, unit tokens. Pure.

A release runs one or more *process types* (``web``, ``worker``, ...), each a command; only
``web`` gets ``PORT`` and traffic. ``release`` is not a process type but the command a deploy
runs once, before any instance of the new release starts.

Each instance of each type is its own unit. Its token (what follows ``bindrop-app-<app>-``) is
the *generation* (``<release>`` or ``<release>.<n>``, a fresh one per deploy or restart), and
for every instance but the first web one ``_<process>_<n>``:

    bindrop-app-blog-3.service            web 1 of release 3 (as before process types)
    bindrop-app-blog-3_web_2.service      web 2
    bindrop-app-blog-3.1_worker_1.service worker 1 of release 3's second generation

App names and release ids never contain ``_``, so a token splits unambiguously.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass

from bindrop.domain.names import validate_release_id
from bindrop.errors import InvalidInput

WEB = "web"
RELEASE = "release"
PROCESS_NAME_MAX = 15
#: A Procfile bigger than this is not a Procfile.
PROCFILE_MAX = 64 * 1024
PROCESSES_MAX = 16
#: The most instances one process type of an app may be scaled to (BINDROP_MAX_INSTANCES).
DEFAULT_MAX_INSTANCES = 16

_PROCESS_NAME = re.compile(r"[a-z][a-z0-9]*")
_TOKEN = re.compile(r"([a-z0-9][a-z0-9.]*)(?:_([a-z][a-z0-9]*)_([1-9][0-9]{0,3}))?")


def validate_process_name(name: object) -> str:
    """Return ``name`` if it can name a process type: 1-15 lowercase letters and digits,
    starting with a letter (``release`` is the release command, not a process type)."""
    if (not isinstance(name, str) or len(name) > PROCESS_NAME_MAX
            or not _PROCESS_NAME.fullmatch(name)):
        raise InvalidInput(
            f"process name {name!r} is not valid: use 1-{PROCESS_NAME_MAX} lowercase letters "
            "and digits, starting with a letter (web, worker, clock)")
    if name == RELEASE:
        raise InvalidInput("'release' is the release command, run once per deploy; it cannot "
                           "be scaled or run as a process")
    return name


@dataclass(frozen=True)
class Procfile:
    """A release's processes (name -> argv, in the file's order) and its release command."""

    processes: Mapping[str, tuple[str, ...]]
    release: tuple[str, ...] | None = None


def parse_procfile(text: str) -> Procfile:
    """Parse a Procfile: ``name: command`` per line, ``#`` comments and blank lines skipped.

    Commands are split as a POSIX shell would split words (quotes kept together) but not run
    by a shell: ``$PORT`` is in the environment, not expanded. ``InvalidInput`` (naming the
    line) for a line that is not ``name: command``, a bad or repeated name, an empty command,
    no process at all, or more than 16 processes.
    """
    if len(text) > PROCFILE_MAX:
        raise InvalidInput(f"the Procfile is larger than {PROCFILE_MAX} bytes")
    processes: dict[str, tuple[str, ...]] = {}
    release: tuple[str, ...] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, command = line.partition(":")
        name = name.strip()
        where = f"Procfile line {number}"
        if not colon:
            raise InvalidInput(f"{where} is not 'name: command': {raw[:80]!r}")
        if name != RELEASE:
            try:
                validate_process_name(name)
            except InvalidInput as exc:
                raise InvalidInput(f"{where}: {exc.message}") from None
        if name in processes or (name == RELEASE and release is not None):
            raise InvalidInput(f"{where}: process {name!r} is declared twice")
        try:
            argv = tuple(shlex.split(command, comments=False, posix=True))
        except ValueError as exc:
            raise InvalidInput(f"{where}: cannot split the command: {exc}") from None
        if not argv or any("\0" in a for a in argv):
            raise InvalidInput(f"{where}: process {name!r} has no command")
        if name == RELEASE:
            release = argv
        else:
            processes[name] = argv
    if not processes:
        raise InvalidInput("the Procfile declares no process: add a line such as "
                           "'web: ./server'")
    if len(processes) > PROCESSES_MAX:
        raise InvalidInput(f"the Procfile declares {len(processes)} processes; at most "
                           f"{PROCESSES_MAX} are allowed")
    return Procfile(processes, release)


@dataclass(frozen=True, order=True)
class InstanceId:
    """One instance: its generation (``3`` or ``3.1``), process type and number (from 1)."""

    generation: str
    process: str = WEB
    number: int = 1

    @property
    def token(self) -> str:
        """What follows ``bindrop-app-<app>-`` in the unit name."""
        if self.process == WEB and self.number == 1:
            return self.generation
        return f"{self.generation}_{self.process}_{self.number}"

    @property
    def release(self) -> str:
        return self.generation.split(".", 1)[0]

    @property
    def generation_number(self) -> int:
        _, _, n = self.generation.partition(".")
        return int(n) if n.isdigit() else 0


def build_instance_id(generation: str, process: str = WEB, number: int = 1) -> InstanceId:
    """Validate the parts and return the instance (``InvalidInput`` for a bad one)."""
    validate_release_id(generation)
    validate_process_name(process)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 9999:
        raise InvalidInput(f"instance number {number!r} is not valid: use 1 to 9999")
    return InstanceId(generation, process, number)


def parse_instance_token(token: str) -> InstanceId | None:
    """The inverse of ``InstanceId.token``; ``None`` for anything else (never raises)."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    generation, process, number = match.groups()
    try:
        validate_release_id(generation)
        if process is None:
            return InstanceId(generation)
        validate_process_name(process)
    except InvalidInput:
        return None
    if process == WEB and number == "1":
        return None  # web 1 is always the bare generation: one name per instance
    return InstanceId(generation, process, int(number))


def parse_scale(items: Mapping[str, object], *, known: frozenset[str] | None = None,
                max_instances: int = DEFAULT_MAX_INSTANCES) -> dict[str, int]:
    """Check a scale request (process -> instance count). Pure.

    ``InvalidInput`` for a bad name, a count that is not a whole number from 0 to
    ``max_instances``, or (with ``known``) a process the release does not declare.
    """
    if not isinstance(items, Mapping) or not items:
        raise InvalidInput("name at least one process and its count, e.g. web=3 worker=1")
    counts: dict[str, int] = {}
    for name, count in items.items():
        validate_process_name(name)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidInput(f"the count of {name} ({count!r}) is not valid: use a whole "
                               "number, 0 or more")
        if count > max_instances:
            raise InvalidInput(f"{name}={count} is above the limit of {max_instances} "
                               "instances per process (the server's --max-instances)")
        if known is not None and name not in known:
            raise InvalidInput(f"the release declares no process {name!r}; it has "
                               f"{', '.join(sorted(known)) or 'none'}")
        counts[name] = count
    return counts


def parse_scale_args(args: list[str] | tuple[str, ...]) -> dict[str, object]:
    """``["web=3", "worker=1"]`` -> ``{"web": 3, "worker": 1}`` (counts checked later)."""
    out: dict[str, object] = {}
    for arg in args:
        name, eq, value = arg.partition("=")
        if not eq or not value.strip().isdigit():
            raise InvalidInput(f"{arg!r} is not PROCESS=COUNT, e.g. web=3")
        if name in out:
            raise InvalidInput(f"process {name!r} is named twice")
        out[name] = int(value.strip())
    return out
