"""build_app_unit, its inputs, and the typed property table (bindrop.units)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbus_fast import Message, Variant

from bindrop.domain.limits import Limits, parse_cpu, parse_memory
from bindrop.domain.timespans import format_usec
from bindrop.errors import InvalidInput
from bindrop.settings import Settings
from bindrop.units import (
    PROPERTY_SIGNATURES,
    AppSpec,
    Property,
    ReleaseSpec,
    UnitSpec,
    build_app_unit,
    prop,
)
from bindrop.units.signature import split_types

SETTINGS = Settings()
BLOG = AppSpec("blog", {})
R1 = ReleaseSpec("1", "/srv/blog/bin/blog", (), 20001)


def build(
    app: AppSpec = BLOG, release: ReleaseSpec = R1, settings: Settings = SETTINGS
) -> UnitSpec:
    return build_app_unit(app, release, settings)


def environment(spec: UnitSpec) -> list[str]:
    value = spec.get("Environment")
    assert isinstance(value, list)
    return value


# --- defaults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Description", "bindrop app blog release 1"),
        ("Type", "exec"),
        ("Restart", "on-failure"),
        ("RestartUSec", 1_000_000),
        ("StartLimitIntervalUSec", 10_000_000),
        ("StartLimitBurst", 5),
        ("TimeoutStopUSec", 10_000_000),
        ("Slice", "bindrop.slice"),
        ("CPUAccounting", True),
        ("MemoryAccounting", True),
        ("CollectMode", "inactive-or-failed"),
        ("StateDirectory", ["bindrop/apps/blog"]),
        ("WorkingDirectory", "/var/lib/bindrop/apps/blog"),
        ("DynamicUser", True),
        ("User", "bindrop-blog"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", True),
        ("NoNewPrivileges", True),
        ("SuccessExitStatus", ([143], [])),
        ("SyslogIdentifier", "blog"),
        ("LogExtraFields", [b"BINDROP_APP=blog", b"BINDROP_RELEASE=1", b"BINDROP_PROCESS=web",
                            b"BINDROP_INSTANCE=1"]),
        ("ExecStart", [("/srv/blog/bin/blog", ["/srv/blog/bin/blog"], False)]),
        ("Environment", ["PORT=20001", "BINDROP_APP=blog", "BINDROP_RELEASE=1",
                         "BINDROP_PROCESS=web", "BINDROP_INSTANCE=1"]),
    ],
)
def test_every_app_unit_has_the_default(name: str, value: object) -> None:
    assert build().get(name) == value


def test_unit_is_named_after_app_and_release() -> None:
    assert build(AppSpec("my-blog"), ReleaseSpec("7", "/bin/x", (), 1)).name == (
        "bindrop-app-my-blog-7.service"
    )


def test_property_order_is_stable_and_deterministic() -> None:
    limited = AppSpec("blog", {"B": "2", "A": "1"}, Limits(1024, 50, 10))
    assert build(limited) == build(limited)
    assert build(limited).names == (
        "Description",
        "CollectMode",
        "StartLimitIntervalUSec",
        "StartLimitBurst",
        "Slice",
        "CPUAccounting",
        "MemoryAccounting",
        "Type",
        "ExecStart",
        "WorkingDirectory",
        "Environment",
        "User",
        "DynamicUser",
        "StateDirectory",
        "Restart",
        "RestartUSec",
        "TimeoutStopUSec",
        "SuccessExitStatus",
        "SyslogIdentifier",
        "LogExtraFields",
        "ProtectSystem",
        "ProtectHome",
        "PrivateTmp",
        "NoNewPrivileges",
        "MemoryMax",
        "CPUQuotaPerSecUSec",
        "TasksMax",
    )


# --- ExecStart ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "sent"),
    [
        ("$HOME", "$$HOME"),
        ("${PORT}", "$${PORT}"),
        ("price=$5", "price=$$5"),
        ("$$", "$$$$"),
        ("no dollar", "no dollar"),
    ],
)
def test_dollar_in_arguments_is_escaped(arg: str, sent: str) -> None:
    spec = build(release=ReleaseSpec("1", "/bin/x", (arg,), 1))
    assert spec.get("ExecStart") == [("/bin/x", ["/bin/x", sent], False)]


def test_dollar_in_path_is_escaped_in_argv0_but_not_in_the_path_systemd_executes() -> None:
    spec = build(release=ReleaseSpec("1", "/opt/$app/run", (), 1))
    assert spec.get("ExecStart") == [("/opt/$app/run", ["/opt/$$app/run"], False)]


def test_arguments_are_passed_in_order_after_the_path() -> None:
    spec = build(release=ReleaseSpec("1", "/bin/x", ("serve", "--port", "1", ""), 1))
    assert spec.get("ExecStart") == [("/bin/x", ["/bin/x", "serve", "--port", "1", ""], False)]


# --- environment ----------------------------------------------------------------------------


def test_user_env_is_sorted_and_comes_before_bindrop_variables() -> None:
    app = AppSpec("blog", {"ZED": "z", "A_KEY": "a", "M": "has spaces and = signs"})
    assert environment(build(app, ReleaseSpec("3", "/bin/x", (), 25000))) == [
        "A_KEY=a",
        "M=has spaces and = signs",
        "ZED=z",
        "PORT=25000",
        "BINDROP_APP=blog",
        "BINDROP_RELEASE=3",
        "BINDROP_PROCESS=web",
        "BINDROP_INSTANCE=1",
    ]


@pytest.mark.parametrize("key", ["PORT", "BINDROP_APP", "BINDROP_RELEASE"])
def test_port_cannot_be_overridden_by_user_env(key: str) -> None:
    with pytest.raises(InvalidInput, match=key):
        AppSpec("blog", {key: "1"})


def test_port_is_the_last_port_assignment_so_it_wins_in_systemd() -> None:
    ports = [e for e in environment(build()) if e.startswith("PORT=")]
    assert ports == ["PORT=20001"]


@pytest.mark.parametrize("value", ["a\0b", "bell\a", "esc\x1b[0m", "cr\r", "del\x7f", "\ud800"])
def test_env_values_systemd_would_refuse_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as e:
        AppSpec("blog", {"KEY": value})
    assert value not in e.value.message  # env values are never echoed


@pytest.mark.parametrize("value", ["", "tab\there", "line\nbreak", "ünïcode", "$NOT_EXPANDED"])
def test_env_values_systemd_accepts_are_kept_verbatim(value: str) -> None:
    assert f"KEY={value}" in environment(build(AppSpec("blog", {"KEY": value})))


def test_invalid_env_key_is_refused() -> None:
    with pytest.raises(InvalidInput):
        AppSpec("blog", {"NOT-OK": "1"})


def test_app_env_cannot_be_changed_after_validation() -> None:
    env = {"A": "1"}
    app = AppSpec("blog", env)
    env["PORT"] = "1"
    assert "PORT" not in app.env


# --- identity and data ----------------------------------------------------------------------


def test_releases_of_one_app_share_user_and_state_directory() -> None:
    first = build(release=ReleaseSpec("1", "/bin/x", (), 20001))
    second = build(release=ReleaseSpec("2", "/bin/y", (), 20002))
    for name in ("User", "StateDirectory", "WorkingDirectory", "SyslogIdentifier"):
        assert first.get(name) == second.get(name), name
    assert first.name != second.name


def test_working_directory_ignores_settings_root(tmp_path: Path) -> None:
    moved = Settings(root=tmp_path)
    assert build(settings=moved).get("WorkingDirectory") == "/var/lib/bindrop/apps/blog"
    assert build(settings=moved) == build()


def test_release_working_directory_replaces_the_default() -> None:
    release = ReleaseSpec("1", "/bin/x", (), 1, working_directory="/srv/blog")
    assert build(release=release).get("WorkingDirectory") == "/srv/blog"
    assert build(release=release).get("StateDirectory") == ["bindrop/apps/blog"]


def test_long_app_name_gets_a_short_user() -> None:
    app = AppSpec("a-very-long-application-name-for-tests")
    user = build(app).get("User")
    assert isinstance(user, str)
    assert len(user) <= 31


def test_system_apps_run_exactly_like_user_apps() -> None:
    assert build(AppSpec("dash", system=True)) == build(AppSpec("dash"))


# --- limits ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["MemoryMax", "CPUQuotaPerSecUSec", "TasksMax"])
def test_limits_absent_when_unset(name: str) -> None:
    assert name not in build().names


@pytest.mark.parametrize(
    ("limits", "name", "value"),
    [
        (Limits(memory_max=256 * 1024**2), "MemoryMax", 268435456),
        (Limits(cpu_quota=50), "CPUQuotaPerSecUSec", 500_000),
        (Limits(cpu_quota=200), "CPUQuotaPerSecUSec", 2_000_000),
        (Limits(tasks_max=64), "TasksMax", 64),
    ],
)
def test_limits_present_when_set(limits: Limits, name: str, value: int) -> None:
    spec = build(AppSpec("blog", limits=limits))
    assert spec.get(name) == value
    others = {"MemoryMax", "CPUQuotaPerSecUSec", "TasksMax"} - {name}
    assert not others & set(spec.names)


@pytest.mark.parametrize(
    "limits",
    [
        {"memory_max": 0},
        {"memory_max": -1},
        {"memory_max": 2**64 - 1},
        {"cpu_quota": 0},
        {"cpu_quota": 1.5},
        {"cpu_quota": True},
        {"tasks_max": 0},
        {"tasks_max": "10"},
    ],
)
def test_invalid_limits_are_refused(limits: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        Limits(**limits)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1048576", 1048576),
        ("512K", 512 * 1024),
        ("256M", 256 * 1024**2),
        ("256m", 256 * 1024**2),
        ("256MB", 256 * 1024**2),
        ("256MiB", 256 * 1024**2),
        ("1G", 1024**3),
        ("1.5G", 1536 * 1024**2),
        ("2T", 2 * 1024**4),
        (" 64M ", 64 * 1024**2),
        ("100B", 100),
    ],
)
def test_parse_memory_reads_sizes_in_powers_of_1024(text: str, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize(
    "text", ["", "0", "0M", "-1M", "M", "1X", "1.5.1G", "lots", "1 G B", "0.0000001K", "2E"]
)
def test_parse_memory_refuses_nonsense_zero_and_negative(text: str) -> None:
    with pytest.raises(InvalidInput, match="512M"):
        parse_memory(text)


@pytest.mark.parametrize(
    ("text", "percent"),
    [("50%", 50), ("150%", 150), ("1.5", 150), ("2", 200), ("0.5", 50), ("0.01", 1), ("5 %", 5)],
)
def test_parse_cpu_reads_percent_or_cpus(text: str, percent: int) -> None:
    assert parse_cpu(text) == percent


@pytest.mark.parametrize(
    "text", ["", "0", "0%", "-50%", "-1", "%", "half", "12.5%", "0.015", "50%%", "1,5"]
)
def test_parse_cpu_refuses_nonsense_zero_negative_and_fractions_of_a_percent(text: str) -> None:
    with pytest.raises(InvalidInput, match="CPU quota"):
        parse_cpu(text)


@pytest.mark.parametrize(
    ("usec", "text"),
    [
        (0, "0"),
        (100_000, "100ms"),
        (1_000_000, "1s"),
        (1_500_000, "1.500s"),
        (10_000_000, "10s"),
        (90_000_000, "1min 30s"),
        (3_600_000_000, "1h"),
        (86_400_000_000 + 1_000_000, "1d 1s"),
        (1_500, "1ms"),
        (2**64 - 1, "infinity"),
    ],
)
def test_format_usec_writes_times_as_systemd_does(usec: int, text: str) -> None:
    assert format_usec(usec) == text


# --- releases -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "1-2"},
        {"exec_path": "bin/blog"},
        {"exec_path": ""},
        {"exec_path": "/bin/\0x"},
        {"exec_path": "/bin/new\nline"},
        {"working_directory": "/srv/\x1b"},
        {"working_directory": "relative"},
        {"args": ("a\0b",)},
        {"port": 0},
        {"port": 65536},
        {"port": True},
        {"port": "8080"},
    ],
)
def test_invalid_releases_are_refused(fields: dict[str, object]) -> None:
    base: dict[str, object] = {"id": "1", "exec_path": "/bin/x", "args": (), "port": 8080}
    with pytest.raises(InvalidInput):
        ReleaseSpec(**(base | fields))  # type: ignore[arg-type]


def test_release_args_given_as_a_list_become_a_tuple() -> None:
    release = ReleaseSpec("1", "/bin/x", ["a", "b"], 1)  # type: ignore[arg-type]
    assert release.args == ("a", "b")


# --- the typed property table ---------------------------------------------------------------


def test_unknown_property_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown property 'RestartSteps'"):
        prop("RestartSteps", 5)
    with pytest.raises(ValueError, match="unknown property"):
        Property("RestartSec", "t", 1)


def test_signature_other_than_the_tables_is_refused() -> None:
    with pytest.raises(ValueError, match="'t', not 'b'"):
        Property("RestrictNamespaces", "b", True)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Description", 1),
        ("Description", b"bytes"),
        ("Description", "nul\0"),
        ("DynamicUser", 1),
        ("MemoryMax", True),
        ("MemoryMax", -1),
        ("MemoryMax", 2**64),
        ("StartLimitBurst", 2**32),
        ("KillSignal", 2**31),
        ("MemoryMax", 1.5),
        ("Environment", "A=1"),
        ("Environment", [1]),
        ("LogExtraFields", ["A=1"]),
        ("ExecStart", [("/bin/x", ["/bin/x"])]),
        ("ExecStart", [("/bin/x", "/bin/x", False)]),
        ("SuccessExitStatus", [143]),
        ("SuccessExitStatus", ([143], [2**31])),
    ],
)
def test_value_that_does_not_fit_the_signature_is_refused(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        prop(name, value)


@pytest.mark.parametrize(
    ("name", "given", "stored"),
    [
        ("Environment", ("A=1", "B=2"), ["A=1", "B=2"]),
        ("ExecStart", [["/bin/x", ("/bin/x", "-v"), False]], [("/bin/x", ["/bin/x", "-v"], False)]),
        ("LogExtraFields", [bytearray(b"A=1")], [b"A=1"]),
        ("SuccessExitStatus", [[143], []], ([143], [])),
    ],
)
def test_values_are_stored_in_the_shape_dbus_fast_accepts(
    name: str, given: object, stored: object
) -> None:
    p = prop(name, given)
    assert p.value == stored
    assert type(p.value) is type(stored)


def test_property_value_is_a_copy_of_the_callers_list() -> None:
    env = ["A=1"]
    p = prop("Environment", env)
    env.append("B=2")
    assert p.value == ["A=1"]


def test_property_unpacks_as_name_signature_value() -> None:
    name, signature, value = prop("MemoryMax", 1024)
    assert (name, signature, value) == ("MemoryMax", "t", 1024)


def test_unit_spec_refuses_a_property_given_twice() -> None:
    with pytest.raises(ValueError, match="Type given twice"):
        UnitSpec("x.service", (prop("Type", "exec"), prop("Type", "simple")))


def test_unit_spec_get_raises_key_error_for_an_unset_property() -> None:
    with pytest.raises(KeyError):
        build().get("MemoryMax")


@pytest.mark.parametrize("name", sorted(PROPERTY_SIGNATURES))
def test_every_signature_in_the_table_is_one_complete_type(name: str) -> None:
    assert split_types(PROPERTY_SIGNATURES[name]) == [PROPERTY_SIGNATURES[name]]


def test_every_property_of_a_full_unit_marshals_in_a_start_transient_unit_call() -> None:
    spec = build(
        AppSpec("blog", {"GREETING": "hi there"}, Limits(1024**3, 150, 100)),
        ReleaseSpec("2.1", "/bin/x", ("--a", "$b"), 20001, working_directory="/srv"),
    )
    body = [
        spec.name,
        "fail",
        [[p.name, Variant(p.signature, p.value)] for p in spec.properties],
        [],
    ]
    message = Message(
        destination="org.freedesktop.systemd1",
        path="/org/freedesktop/systemd1",
        interface="org.freedesktop.systemd1.Manager",
        member="StartTransientUnit",
        signature="ssa(sv)a(sa(sv))",
        body=body,
    )
    assert len(message._marshall(negotiate_unix_fd=False)) > 0
