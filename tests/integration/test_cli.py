"""The CLI against a real API (unix socket and TCP): --json parses, failures exit non-zero
with one line, the token flow works from the shell's point of view."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bindrop.api import ApiServer
from bindrop.cli.main import cli

from .hubkit import HELLO, http_get

pytestmark = pytest.mark.integration


async def bindrop(api: ApiServer, *args: str, tcp_token: str | None = None,
                  env: dict[str, str] | None = None) -> Result:
    """Run ``bindrop ARGS`` against the test API (in a thread: the CLI runs its own loop)."""
    server = f"http://127.0.0.1:{api.tcp_port}" if tcp_token else f"unix:{api.socket_path}"
    environ = {"BINDROP_SERVER": server, "BINDROP_TOKEN": tcp_token or ""} | (env or {})
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, cli, list(args), env=environ)


def parsed(result: Result) -> object:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_json_output_of_every_reading_command_parses(api: ApiServer) -> None:
    created = parsed(await bindrop(api, "create", "shop", "--host", "shop.test",
                                   "--memory", "256M", "--json"))
    assert isinstance(created, dict) and created["memory_max"] == 256 * 1024**2
    deployed = parsed(await bindrop(api, "deploy", "shop", str(HELLO), "--cmd",
                                    "--label 'cli build'", "--json"))
    assert isinstance(deployed, dict)
    port = deployed["outcome"]["port"]
    status, body = await http_get(port)
    assert status == 200 and body.startswith("cli build from shop release 1")
    parsed(await bindrop(api, "env", "set", "shop", "MODE=fast", "--json"))
    readers: Sequence[Sequence[str]] = [
        ("apps",), ("status", "shop"), ("releases", "shop"), ("env", "list", "shop"),
        ("limits", "shop"), ("token", "list"), ("logs", "shop", "-n", "5"),
    ]
    for args in readers:
        result = await bindrop(api, *args, "--json")
        assert result.exit_code == 0, (args, result.output)
        if args[0] == "logs":
            assert all(json.loads(line) for line in result.stdout.splitlines())
        else:
            json.loads(result.stdout)
    apps = parsed(await bindrop(api, "apps", "--json"))
    assert isinstance(apps, list) and apps[0]["live"]["state"] == "running"
    parsed(await bindrop(api, "stop", "shop", "--json"))


async def test_token_create_prints_the_token_alone_and_it_works_over_tcp(
    api: ApiServer,
) -> None:
    created = await bindrop(api, "token", "create", "laptop", "--read-only", "--expires", "90d")
    assert created.exit_code == 0
    token = created.stdout.strip()
    assert created.stdout == token + "\n" and token.startswith("bd_")
    listed = await bindrop(api, "apps", "--json", tcp_token=token)
    assert parsed(listed) == []
    refused = await bindrop(api, "create", "x", "--host", "x.test", tcp_token=token)
    assert refused.exit_code == 1
    assert refused.stderr.count("\n") == 1
    assert "token 'laptop' is read-only and cannot" in refused.stderr


async def test_a_failure_exits_non_zero_with_a_one_line_reason(api: ApiServer) -> None:
    missing = await bindrop(api, "status", "ghost")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: no app named 'ghost'")
    assert missing.stderr.count("\n") == 1
    unreachable = await bindrop(api, "apps", env={"BINDROP_SERVER": "unix:/nonexistent.sock"})
    assert unreachable.exit_code == 1 and "cannot reach" in unreachable.stderr
    unauthorized = await bindrop(api, "apps", tcp_token="bd_wrong")
    assert unauthorized.exit_code == 1 and "not valid" in unauthorized.stderr


async def test_a_saved_server_name_works_as_server(api: ApiServer, tmp_path: Path) -> None:
    home = {"XDG_CONFIG_HOME": str(tmp_path)}
    added = await bindrop(api, "server", "add", "here", f"unix:{api.socket_path}", env=home)
    assert added.exit_code == 0, added.output
    assert oct((tmp_path / "bindrop" / "servers.json").stat().st_mode & 0o777) == "0o600"
    result = await bindrop(api, "apps", "--json", env=home | {"BINDROP_SERVER": "here"})
    assert parsed(result) == []


async def test_people_get_tables_and_short_lines(api: ApiServer) -> None:
    created = await bindrop(api, "create", "page", "--host", "page.test")
    assert created.stdout.startswith("created page (page.test)")
    deployed = await bindrop(api, "deploy", "page", str(HELLO))
    assert deployed.exit_code == 0, deployed.output
    assert deployed.stdout == "release 1 of page is live\n"
    assert "uploading hello.py" in deployed.stderr  # the progress bar, on stderr
    apps = (await bindrop(api, "apps")).stdout.splitlines()
    assert apps[0].split() == ["APP", "STATE", "RELEASE", "HOSTS"]
    assert apps[1].split() == ["page", "running", "1", "page.test"]
    status = (await bindrop(api, "status", "page")).stdout
    assert "state:     running" in status and "url:       http://page.test/" in status
    env_set = await bindrop(api, "env", "set", "page", "API_TOKEN=abc", "MODE=x")
    assert env_set.stdout == "set API_TOKEN, MODE on page (restarted)\n"
    listed = (await bindrop(api, "env", "list", "page")).stdout
    assert listed == "API_TOKEN=••••\nMODE=x\n"
    stopped = await bindrop(api, "stop", "page")
    assert stopped.stdout == "page is stopped\n"


async def test_update_turns_settings_on_and_off_and_replaces_hosts(api: ApiServer) -> None:
    parsed(await bindrop(api, "create", "docs", "--host", "docs.test", "--json"))
    on = await bindrop(api, "update", "docs", "--hsts", "--no-tls")
    assert on.exit_code == 0, on.output
    assert on.stdout == "updated docs: tls on -> off; hsts off -> on\n"
    assert on.stderr == "note: hsts has no effect on docs while tls is off (it is sent only " \
                        "for names bindrop gets certificates for)\n"
    shown_run = await bindrop(api, "update", "docs", "--no-hsts", "--json")
    assert shown_run.stderr == ""
    shown = parsed(shown_run)
    assert isinstance(shown, dict) and shown["hsts"] is False and shown["no_tls"] is True
    again = await bindrop(api, "update", "docs", "--no-hsts")
    assert again.stdout == "docs unchanged (already so)\n"
    moved = await bindrop(api, "update", "docs", "--host", "a.docs.test", "--host",
                          "b.docs.test", "--health", "/up", "--tls")
    assert moved.exit_code == 0, moved.output
    assert moved.stdout == ("updated docs: hosts docs.test -> a.docs.test, b.docs.test; "
                            "health none -> /up; tls off -> on\n")
    app = parsed(await bindrop(api, "status", "docs", "--json"))
    assert isinstance(app, dict)
    assert app["app"]["hosts"] == ["a.docs.test", "b.docs.test"]
    assert app["app"]["health_path"] == "/up" and app["app"]["no_tls"] is False
    cleared = parsed(await bindrop(api, "update", "docs", "--no-health", "--json"))
    assert isinstance(cleared, dict) and cleared["health_path"] is None


async def test_create_and_update_set_the_proxy_settings_and_a_maintenance_page(
        api: ApiServer) -> None:
    created = parsed(await bindrop(api, "create", "shop", "--host", "shop.test",
                                   "--body-limit", "1M", "--idle-timeout", "60",
                                   "--health-timeout", "10", "--json"))
    assert isinstance(created, dict)
    assert (created["body_limit"], created["idle_timeout_s"],
            created["health_timeout_s"]) == (1048576, 60, 10)
    changed = await bindrop(api, "update", "shop", "--body-limit", "2.5M",
                            "--maintenance", "Back at noon: we are moving house.")
    assert changed.exit_code == 0, changed.output
    assert changed.stdout == ("updated shop: body-limit 1M -> 2.5M; maintenance "
                              'message none -> "Back at noon: we are moving house."\n')
    shop = parsed(await bindrop(api, "status", "shop", "--json"))
    assert isinstance(shop, dict)
    assert shop["app"]["maintenance_message"] == "Back at noon: we are moving house."
    assert shop["app"]["body_limit"] == 2621440
    ended = await bindrop(api, "update", "shop", "--no-maintenance", "--idle-timeout", "1.5")
    assert ended.stdout == ("updated shop: idle-timeout 60s -> 1.5s; maintenance message "
                            '"Back at noon: we are moving house." -> none\n')
    # bad input is refused before anything is sent, and nothing changes
    for args, says in ((["--body-limit", "lots"], "body limit 'lots' is not valid"),
                       (["--body-limit", "0"], "body limit '0' is not valid"),
                       (["--idle-timeout", "0"], "--idle-timeout"),
                       (["--idle-timeout", "nan"], "--idle-timeout"),
                       (["--health-timeout", "1e400"], "--health-timeout"),
                       (["--maintenance", "x", "--no-maintenance"], "not both")):
        refused = await bindrop(api, "update", "shop", *args)
        assert refused.exit_code == 2 and says in refused.stderr, (args, refused.output)
    for bad in ("  ", "Back \x1b[31msoon", "Back\u202esoon", "Back\x00soon"):
        refused = await bindrop(api, "update", "shop", "--maintenance", bad)
        assert refused.exit_code == 1, (bad, refused.output)
        assert "maintenance message is not valid" in refused.stderr, bad
    lines = await bindrop(api, "update", "shop", "--maintenance", "Back at noon.\n\tSorry!")
    assert lines.exit_code == 0, lines.output
    await bindrop(api, "update", "shop", "--no-maintenance")
    after = parsed(await bindrop(api, "status", "shop", "--json"))
    assert isinstance(after, dict)
    assert (after["app"]["body_limit"], after["app"]["idle_timeout_s"],
            after["app"]["maintenance_message"]) == (2621440, 1.5, None)


async def test_update_refuses_a_taken_host_a_read_only_token_and_nothing_to_do(
    api: ApiServer,
) -> None:
    parsed(await bindrop(api, "create", "one", "--host", "one.test", "--json"))
    parsed(await bindrop(api, "create", "two", "--host", "two.test", "--json"))
    taken = await bindrop(api, "update", "two", "--host", "one.test")
    assert taken.exit_code == 1
    assert taken.stderr.count("\n") == 1
    assert "host one.test already belongs to app 'one'" in taken.stderr
    token = (await bindrop(api, "token", "create", "viewer", "--read-only")).stdout.strip()
    refused = await bindrop(api, "update", "two", "--hsts", tcp_token=token)
    assert refused.exit_code == 1 and "read-only" in refused.stderr
    nothing = await bindrop(api, "update", "two")
    assert nothing.exit_code == 2
    assert "nothing to change" in nothing.stderr and "--hsts/--no-hsts" in nothing.stderr
    both = await bindrop(api, "update", "two", "--health", "/up", "--no-health")
    assert both.exit_code == 2
    two = parsed(await bindrop(api, "status", "two", "--json"))
    assert isinstance(two, dict)
    assert two["app"]["hosts"] == ["two.test"] and two["app"]["hsts"] is False
    assert two["app"]["health_path"] is None
