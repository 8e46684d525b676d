"""App + release -> the transient unit that runs that release. Pure: no IO, no D-Bus.

``build_app_unit`` is the only place that decides how an app runs under systemd; the systemd
client turns the result into Variants and calls ``StartTransientUnit``.

Environment: the app's variables come first, sorted by key, then ``PORT`` (web instances only),
``BINDROP_APP``, ``BINDROP_RELEASE``, ``BINDROP_PROCESS`` and ``BINDROP_INSTANCE``. A user may
not set those at all (``validate_env_key`` refuses them); placing them last is a second guard,
since systemd lets the last assignment of a name win. The last four are journal fields too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bindrop.domain.limits import USEC_PER_CPU_PERCENT, Limits
from bindrop.domain.names import validate_app_name, validate_env_key, validate_release_id
from bindrop.domain.processes import parse_instance_token
from bindrop.domain.timespans import USEC_PER_SEC
from bindrop.errors import InvalidInput
from bindrop.settings import Settings
from bindrop.units.names import SLICE, app_unit_name, dynamic_user_name
from bindrop.units.properties import Property, UnitSpec, prop

__all__ = [
    "AppSpec",
    "ReleaseSpec",
    "UnitSpec",
    "build_app_unit",
]

RESTART_USEC = 1 * USEC_PER_SEC
START_LIMIT_INTERVAL_USEC = 10 * USEC_PER_SEC
START_LIMIT_BURST = 5
# systemd's default is 90 s; the old release is stopped only after the proxy has drained it,
# so an app that ignores SIGTERM should not hold a deploy for a minute and a half.
TIMEOUT_STOP_USEC = 10 * USEC_PER_SEC
# 128 + SIGTERM: what many runtimes (JVM, shells, Node with a handler) exit with when stopped.
# Without it a deliberate stop leaves the unit "failed".
SIGTERM_EXIT_STATUS = 143
# StateDirectory= is always relative to /var/lib for the system manager, whatever bindrop's
# own root is, so the working directory is too.
SYSTEMD_STATE_ROOT = "/var/lib"
MAX_PORT = 65535


@dataclass(frozen=True)
class AppSpec:
    """What an app is: its name, its environment and its limits (validated: ``InvalidInput``).

    ``system`` marks bindrop's own apps (the dashboard); they run exactly like user apps, so it
    does not change the unit. ``read_only_paths`` (absolute) are made visible, read-only, through
    the home-directory protection and the private /tmp: the hub gives a system app the Python
    it runs on when that lives under /root, /home or /tmp (pyenv, a user's virtualenv, a
    checkout in CI); with none, homes stay hidden.
    """

    name: str
    env: Mapping[str, str] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    system: bool = False
    read_only_paths: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        validate_app_name(self.name)
        for key, value in self.env.items():
            validate_env_key(key)
            _check_env_value(key, value)
        object.__setattr__(self, "env", MappingProxyType(dict(self.env)))
        object.__setattr__(self, "read_only_paths", tuple(self.read_only_paths))
        for path in self.read_only_paths:
            _check_absolute("read-only path", path)


@dataclass(frozen=True)
class ReleaseSpec:
    """One instance of a release: what to execute and on which port (validated:
    ``InvalidInput``).

    ``id`` is the instance token (``3``, ``3.1``, ``3_worker_2``; see
    ``bindrop.domain.processes``); ``exec_path`` is the absolute path of the binary or
    launcher; ``args`` follow it. ``port`` is None for a process that gets no traffic.
    ``working_directory`` (absolute) defaults to the app's state directory.
    """

    id: str
    exec_path: str
    args: tuple[str, ...]
    port: int | None
    working_directory: str | None = None

    def __post_init__(self) -> None:
        if parse_instance_token(self.id) is None:
            validate_release_id(self.id)  # raises with the message about release ids
            raise InvalidInput(f"instance {self.id!r} is not valid")
        object.__setattr__(self, "args", tuple(self.args))
        _check_absolute("executable path", self.exec_path)
        if self.working_directory is not None:
            _check_absolute("working directory", self.working_directory)
        for arg in self.args:
            if not isinstance(arg, str) or not _is_dbus_string(arg):
                raise InvalidInput(
                    f"argument {arg!r} is not valid: arguments are text without NUL bytes"
                )
        port = self.port
        if port is None:
            return
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port <= MAX_PORT:
            raise InvalidInput(f"port {port!r} is not valid: use a number from 1 to {MAX_PORT}")


def app_state_directory(app: str) -> str:
    """Return the app's ``StateDirectory=`` (relative to /var/lib), shared by all releases."""
    return f"bindrop/apps/{validate_app_name(app)}"


def build_app_unit(app: AppSpec, release: ReleaseSpec, settings: Settings) -> UnitSpec:
    """Return the transient unit that runs ``release`` of ``app``. Pure and deterministic.

    Property order is fixed (unit settings, how to run, environment, identity and data,
    restart policy, logging, sandbox, limits); limits appear only when set. ``settings`` is
    taken so that the unit may depend on it; nothing in an app unit does today.
    """
    name = app_unit_name(app.name, release.id)
    instance = parse_instance_token(release.id)
    assert instance is not None  # ReleaseSpec checked it
    state_directory = app_state_directory(app.name)
    working_directory = release.working_directory or f"{SYSTEMD_STATE_ROOT}/{state_directory}"
    marks = {"BINDROP_APP": app.name, "BINDROP_RELEASE": instance.generation,
             "BINDROP_PROCESS": instance.process, "BINDROP_INSTANCE": str(instance.number)}
    environment = [f"{k}={app.env[k]}" for k in sorted(app.env)]
    if release.port is not None:
        environment.append(f"PORT={release.port}")
    environment += [f"{k}={v}" for k, v in marks.items()]
    argv = [_escape_dollar(release.exec_path), *(_escape_dollar(a) for a in release.args)]
    what = (f"release {instance.generation}" if instance.token == instance.generation
            else f"release {instance.generation} {instance.process} {instance.number}")

    properties: list[Property] = [
        prop("Description", f"bindrop app {app.name} {what}"),
        # The default CollectMode=inactive keeps a failed unit loaded until ResetFailedUnit, and
        # a loaded unit blocks StartTransientUnit of the same name (UnitExists). The unit's last
        # PropertiesChanged still carries its Result before UnitRemoved.
        prop("CollectMode", "inactive-or-failed"),
        prop("StartLimitIntervalUSec", START_LIMIT_INTERVAL_USEC),
        prop("StartLimitBurst", START_LIMIT_BURST),
        prop("Slice", SLICE),
        # status and the dashboard show CPU time and memory; on cgroup v1 hosts systemd
        # counts CPU time only when asked
        prop("CPUAccounting", True),
        prop("MemoryAccounting", True),
        # exec, not simple: a missing or non-executable binary then fails the start job
        # instead of reporting "started" and failing a moment later.
        prop("Type", "exec"),
        # The path itself is not expanded by systemd, only argv (argv[0] included).
        prop("ExecStart", [(release.exec_path, argv, False)]),
        prop("WorkingDirectory", working_directory),
        prop("Environment", environment),
        # One user per app (not per release), so overlapping releases share the state dir's owner.
        prop("User", dynamic_user_name(app.name)),
        prop("DynamicUser", True),
        prop("StateDirectory", [state_directory]),
        prop("Restart", "on-failure"),
        prop("RestartUSec", RESTART_USEC),
        prop("TimeoutStopUSec", TIMEOUT_STOP_USEC),
        prop("SuccessExitStatus", ([SIGTERM_EXIT_STATUS], [])),
        prop("SyslogIdentifier", app.name),
        # journalctl BINDROP_APP=<app> then shows every release, which a unit glob cannot do
        # exactly (bindrop-app-blog-* also matches the app blog-api).
        prop("LogExtraFields", [f"{k}={v}".encode() for k, v in marks.items()]),
        prop("ProtectSystem", "strict"),
        # tmpfs rather than yes when paths must show through: homes are then empty and
        # world-traversable, holding only the bound paths.
        prop("ProtectHome", "tmpfs" if app.read_only_paths else "yes"),
        *([prop("BindReadOnlyPaths", [(p, p, False, 0) for p in app.read_only_paths])]
          if app.read_only_paths else []),
        prop("PrivateTmp", True),
        prop("NoNewPrivileges", True),
    ]
    limits = app.limits
    if limits.memory_max is not None:
        properties.append(prop("MemoryMax", limits.memory_max))
    if limits.cpu_quota is not None:
        properties.append(prop("CPUQuotaPerSecUSec", limits.cpu_quota * USEC_PER_CPU_PERCENT))
    if limits.tasks_max is not None:
        properties.append(prop("TasksMax", limits.tasks_max))
    return UnitSpec(name, tuple(properties))


def _escape_dollar(arg: str) -> str:
    # systemd expands $VAR and ${VAR} in ExecStart arguments, transient units included;
    # "$$" is its escape for a literal "$".
    return arg.replace("$", "$$")


def _is_dbus_string(text: str) -> bool:
    if "\0" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_absolute(what: str, path: str) -> None:
    ok = isinstance(path, str) and path.startswith("/") and _is_dbus_string(path)
    if not ok or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise InvalidInput(
            f"{what} {path!r} is not valid: use an absolute path without control characters"
        )


def _check_env_value(key: str, value: str) -> None:
    # systemd refuses the whole unit ("Invalid environment assignments") for a value with a
    # control character other than tab or newline, or that is not UTF-8.
    ok = isinstance(value, str) and _is_dbus_string(value)
    if ok and any((ord(c) < 0x20 and c not in "\t\n") or ord(c) == 0x7F for c in value):
        ok = False
    if not ok:
        raise InvalidInput(
            f"the value of {key} is not valid: use text without control characters "
            "other than tab and newline"
        )
