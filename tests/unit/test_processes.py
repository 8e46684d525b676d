"""Process types (issue 17): the Procfile, instance tokens, scale requests, task units,
and the proxy's choice of instance. Pure tables."""

from __future__ import annotations

import pytest

from bindrop.client.proxywire import RouteTable, Upstream, parse_table, render_table
from bindrop.domain.processes import (
    InstanceId,
    build_instance_id,
    parse_instance_token,
    parse_procfile,
    parse_scale,
    parse_scale_args,
)
from bindrop.errors import InvalidInput
from bindrop.hub.plan import Adopt, DesiredApp, ObservedUnit, next_instance, plan_reconcile
from bindrop.hub.routetable import build_route_table
from bindrop.hub.state import AppRunState, Route, derive_view
from bindrop.proxy.balance import pick_upstream
from bindrop.settings import Settings
from bindrop.store import AppConfig
from bindrop.systemd.types import ActiveState, SubState, UnitState
from bindrop.units import AppSpec, ReleaseSpec, build_app_unit, parse_app_unit_name
from bindrop.units.tasks import build_release_task, build_run_task, parse_run_unit_name


def test_procfile_gives_processes_in_order_and_the_release_command() -> None:
    parsed = parse_procfile("# comment\nweb: ./server --port 1\n\nworker: ./worker --queue "
                            "'a b'\nrelease: ./migrate\n")
    assert dict(parsed.processes) == {"web": ("./server", "--port", "1"),
                                      "worker": ("./worker", "--queue", "a b")}
    assert parsed.release == ("./migrate",)


@pytest.mark.parametrize(("text", "message"), [
    ("web: a\nweb: b\n", "declared twice"),
    ("release: a\nrelease: b\nweb: x\n", "declared twice"),
    ("Web: a\n", "not valid"),
    ("my-worker: a\n", "not valid"),
    ("web a\n", "not 'name: command'"),
    ("web:\n", "no command"),
    ("web: 'unclosed\n", "cannot split"),
    ("# nothing\n", "declares no process"),
    ("release: ./migrate\n", "declares no process"),
    ("".join(f"p{i}: x\n" for i in range(17)), "at most 16"),
])
def test_a_bad_procfile_is_refused_naming_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_procfile(text)


@pytest.mark.parametrize(("instance", "token", "unit"), [
    (InstanceId("3"), "3", "bindrop-app-blog-3.service"),
    (InstanceId("3", "web", 2), "3_web_2", "bindrop-app-blog-3_web_2.service"),
    (InstanceId("3.1", "worker", 1), "3.1_worker_1", "bindrop-app-blog-3.1_worker_1.service"),
])
def test_instance_tokens_round_trip_through_unit_names(instance: InstanceId, token: str,
                                                       unit: str) -> None:
    assert instance.token == token
    assert parse_instance_token(token) == instance
    assert parse_app_unit_name(unit) == ("blog", token)


@pytest.mark.parametrize("unit", [
    "bindrop-app-blog-3_web_1.service",  # web 1 has one name: the bare generation
    "bindrop-app-blog-3_release.service",  # a release command is no instance
    "bindrop-app-blog-3_run.0123abcd.service",  # nor is a one-off run
    "bindrop-app-blog-3_worker_0.service",
    "bindrop-app-blog-3_Worker_1.service",
])
def test_names_that_are_no_instance_are_not_parsed_as_one(unit: str) -> None:
    parsed = parse_app_unit_name(unit)
    assert parsed is None or parse_instance_token(parsed[1]) is None


def test_a_new_generation_skips_every_process_of_the_old_ones() -> None:
    assert next_instance("3", ["3", "3_worker_1", "3.1_worker_2"]) == "3.2"
    assert next_instance("4", ["3", "3_worker_1"]) == "4"


def test_reconcile_adopts_a_whole_generation_and_stops_the_older_one() -> None:
    observed = [ObservedUnit(f"u-{t}", "blog", t, True)
                for t in ["3", "3_worker_1", "3.1", "3.1_web_2", "3.1_worker_1"]]
    steps = plan_reconcile([DesiredApp("blog", True, 3)], observed)
    adopted = sorted(s.instance for s in steps if isinstance(s, Adopt))
    assert adopted == ["3.1", "3.1_web_2", "3.1_worker_1"]
    assert sorted(s.unit for s in steps if not isinstance(s, Adopt)) == ["u-3", "u-3_worker_1"]


def test_scale_requests_are_checked_before_anything_changes() -> None:
    assert parse_scale_args(["web=3", "worker=0"]) == {"web": 3, "worker": 0}
    assert parse_scale({"web": 3}, known=frozenset({"web"})) == {"web": 3}
    with pytest.raises(InvalidInput, match="above the limit of 16"):
        parse_scale({"web": 17})
    with pytest.raises(InvalidInput, match="no process 'wrker'"):
        parse_scale({"wrker": 1}, known=frozenset({"web", "worker"}))
    with pytest.raises(InvalidInput, match="PROCESS=COUNT"):
        parse_scale_args(["web:3"])
    with pytest.raises(InvalidInput, match="named twice"):
        parse_scale_args(["web=1", "web=2"])
    with pytest.raises(InvalidInput, match="release command"):
        parse_scale({"release": 1})


def test_only_a_web_instance_gets_a_port_and_every_instance_is_marked_in_the_journal(
        ) -> None:
    spec = build_app_unit(AppSpec("blog"), ReleaseSpec("3_worker_2", "/bin/x", (), None),
                          Settings())
    assert spec.name == "bindrop-app-blog-3_worker_2.service"
    env = spec.get("Environment")
    assert isinstance(env, list)
    assert not any(e.startswith("PORT=") for e in env)
    assert spec.get("LogExtraFields") == [b"BINDROP_APP=blog", b"BINDROP_RELEASE=3",
                                          b"BINDROP_PROCESS=worker", b"BINDROP_INSTANCE=2"]


def test_release_and_run_tasks_run_like_the_app_but_once() -> None:
    release = build_release_task(AppSpec("blog", {"X": "1"}), "3", "/b/migrate", ("up",),
                                 Settings())
    assert release.name == "bindrop-app-blog-3_release.service"
    assert release.get("Type") == "oneshot"
    assert "Restart" not in {p.name for p in release.properties}
    assert "X=1" in release.get("Environment")  # type: ignore[operator]
    assert release.get("User") == "bindrop-blog"
    run = build_run_task(AppSpec("blog"), "3", "0123abcd", "/bin/sh", ("-c", "echo $X"),
                         Settings())
    assert run.name == "bindrop-app-blog-3_run.0123abcd.service"
    assert parse_run_unit_name(run.name, "blog")
    assert not parse_run_unit_name(run.name, "blo")
    with pytest.raises(InvalidInput):
        build_instance_id("3", "release")


def test_the_instance_with_fewest_requests_in_flight_is_picked_and_refused_ones_skipped(
        ) -> None:
    ups = [Upstream(f"u{i}", "3", 1000 + i) for i in range(3)]
    assert pick_upstream(ups, {"u0": 2, "u1": 0, "u2": 1}) == ups[1]
    assert pick_upstream(ups, {}, turn=2) == ups[2]
    assert pick_upstream(ups, {}, turn=1, exclude={"u1"}) == ups[2]
    assert pick_upstream(ups, {}, exclude={"u0", "u1", "u2"}) is None


def _unit(name: str, active: bool = True) -> UnitState:
    return UnitState(name, active_state=ActiveState.ACTIVE if active else ActiveState.ACTIVATING,
                     sub_state=SubState.RUNNING if active else SubState.AUTO_RESTART,
                     main_pid=7)


def test_the_view_serves_only_active_web_instances_and_runs_while_any_runs() -> None:
    routes = (Route("w1", "3", 2001), Route("w2", "3_web_2", 2002),
              Route("k1", "3_worker_1", 0, "worker"))
    view = derive_view("blog", routes, [_unit("w1", False), _unit("w2"), _unit("k1")],
                       None, None)
    assert view.state == AppRunState.RUNNING
    assert [r.unit for r in view.serving] == ["w2"]
    assert view.route == routes[1]  # the first serving web instance
    assert [r.unit for r in view.instances] == ["w1", "w2", "k1"]
    workers_only = derive_view("blog", (routes[2],), [_unit("k1")], None, None)
    assert workers_only.state == AppRunState.RUNNING and workers_only.route is None


def test_the_route_table_lists_every_serving_instance_and_the_proxy_reads_them() -> None:
    routes = (Route("w1", "3", 2001), Route("w2", "3_web_2", 2002))
    view = derive_view("blog", routes, [_unit("w1"), _unit("w2")], None, None)
    entries, _ = build_route_table([AppConfig(name="blog", hosts=("blog.test",))],
                                   {"blog": view})
    assert entries[0].upstream is not None and entries[0].upstream.port == 2001
    assert [u.port for u in entries[0].upstreams] == [2001, 2002]
    rendered = render_table(RouteTable(1, tuple(entries)))
    assert [u["port"] for u in rendered["apps"][0]["upstreams"]] == [2001, 2002]
    table = parse_table(rendered)
    assert [u.port for u in table.apps[0].upstreams] == [2001, 2002]
    # a hub before process types sends only "upstream": one instance
    del rendered["apps"][0]["upstreams"]
    assert [u.port for u in parse_table(rendered).apps[0].upstreams] == [2001]


def test_web_instances_all_restarting_beside_a_running_worker_read_as_restarting() -> None:
    routes = (Route("w1", "3", 2001), Route("k1", "3_worker_1", 0, "worker"))
    view = derive_view("blog", routes, [_unit("w1", False), _unit("k1")], None, None)
    entries, _ = build_route_table([AppConfig(name="blog", hosts=("blog.test",))],
                                   {"blog": view})
    assert entries[0].status == "restarting" and entries[0].upstream is None


def test_an_interactive_run_over_ssh_asks_for_a_terminal_and_runs_bindrop_there() -> None:
    from bindrop.client.servers import parse_server
    from bindrop.client.ssh import ssh_tty_argv

    argv = ssh_tty_argv(parse_server("ssh://root@host:2222/run/b.sock"), "blog",
                        ["sh", "-c", "echo $X; exit 3"], ssh=["ssh", "-i", "k"],
                        remote=["bindrop"])
    assert argv[:2] == ["ssh", "-i"] and "-T" not in argv and "-t" in argv
    assert argv[argv.index("-p") + 1] == "2222"
    assert argv[-2:] == ["root@host", "bindrop run --tty --server unix:/run/b.sock blog -- "
                                      "sh -c 'echo $X; exit 3'"]


def test_install_gives_the_hub_its_max_instances() -> None:
    from bindrop.serve.install import deploy_dir, render_installed_unit

    text = render_installed_unit((deploy_dir() / "bindrop.service").read_text(), "b",
                                 max_instances=4)
    assert "\nEnvironment=BINDROP_MAX_INSTANCES=4\n" in text
    assert Settings.from_env({"BINDROP_MAX_INSTANCES": "4"}).max_instances == 4
    with pytest.raises(InvalidInput, match="BINDROP_MAX_INSTANCES"):
        Settings.from_env({"BINDROP_MAX_INSTANCES": "0"})


def test_install_gives_the_hub_its_release_timeout_and_the_hub_reads_it() -> None:
    from click.testing import CliRunner

    from bindrop.serve.install import deploy_dir, install, render_installed_unit

    template = (deploy_dir() / "bindrop.service").read_text()
    assert "\nEnvironment=BINDROP_RELEASE_TIMEOUT=3600\n" in render_installed_unit(template, "b")
    text = render_installed_unit(template, "b", release_timeout_s=1800)
    assert "\nEnvironment=BINDROP_RELEASE_TIMEOUT=1800\n" in text
    for given, seconds in (("1800", 1800), ("90s", 90), ("30min", 1800), ("1.5h", 5400)):
        assert Settings.from_env({"BINDROP_RELEASE_TIMEOUT": given}).release_timeout_s == \
            seconds
    assert Settings.from_env({}).release_timeout_s == 3600
    for bad in ("0", "0.5", "-5", "soon", "3d", "nan", "inf", "8d"):
        with pytest.raises(InvalidInput, match="BINDROP_RELEASE_TIMEOUT"):
            Settings.from_env({"BINDROP_RELEASE_TIMEOUT": bad})
    # install refuses a bad one before it writes anything
    refused = CliRunner().invoke(install, ["--release-timeout", "soon"], env={"BINDROP_ROOT":
                                                                            "/nonexistent"})
    assert refused.exit_code == 2 and "--release-timeout" in refused.output
