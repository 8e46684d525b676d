"""Commands that run on the server itself: ``bindrop hub``."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import click

from bindrop.api import serve_api
from bindrop.api.proxylink import add_proxy_routes
from bindrop.errors import BindropError
from bindrop.hub.hub import Hub
from bindrop.hub.notify import sd_notify
from bindrop.hub.proxylink import ProxyLink
from bindrop.hub.pubsub import PubSub
from bindrop.hub.routetable import ControlRoute
from bindrop.hub.state import StateStore
from bindrop.hub.tls import TlsManager
from bindrop.moving.bucket_settings import BucketSettings
from bindrop.settings import Settings
from bindrop.store import BlobStore, Store
from bindrop.store.blobs import BlobRemote


@click.command()
@click.option("--log-level", default="info", show_default=True, envvar="BINDROP_LOG_LEVEL",
              type=click.Choice(["debug", "info", "warning", "error"]),
              help="How much to log. [env: BINDROP_LOG_LEVEL]")
def hub(log_level: str) -> None:
    """Run the hub in the foreground (what bindrop.service runs).

    It re-attaches to running apps, recreates missing ones, tells systemd it is ready
    (Type=notify) and on SIGTERM stops cleanly, leaving every app running.

    Example: BINDROP_ROOT=/srv/test bindrop hub --log-level debug
    """
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env(os.environ)
    asyncio.run(_run_hub(settings))


async def _run_hub(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    store = Store.open(settings)
    state, events = StateStore(), PubSub()
    # Connected proxies confirm each route swap and report when an old release is drained.
    link = ProxyLink(state, store, events)
    tls: TlsManager | None = None
    try:
        care_environ = {k: v for k, v in os.environ.items()
                        if k.startswith("BINDROP_") and k != "BINDROP_TOKEN"}
        blobs = BlobStore(settings.blobs_dir, _blob_remote(settings))
        async with Hub(settings, store, blobs, state=state, router=link, events=events,
                       care_environ=care_environ) as the_hub, \
                serve_api(the_hub, settings, local_only=lambda app: add_proxy_routes(
                    app, link, hub=the_hub), bucket=BucketSettings(settings, blobs)) as api:
            if api.tcp_port is not None:
                # Known only now (port 0 picks one): proxies get the table again with it.
                link.route_control(ControlRoute(settings.control_host, api.tcp_port,
                                                settings.upload_limit))
            # Automatic HTTPS works beside the actors; it answers ACME through the proxies.
            tls = the_hub.tls = TlsManager(settings, store, link, events)
            tls.start()
            apps = len(store.list_apps(include_system=True))
            logging.getLogger("bindrop.hub").info(
                "hub ready: %d apps, %d units; API on %s%s", apps,
                len(the_hub.state.snapshot().units), api.socket_path,
                f" and 127.0.0.1:{api.tcp_port} (through the proxy at "
                f"{settings.control_host})" if api.tcp_port else "")
            sd_notify("READY=1\nSTATUS=running", os.environ)
            await stop.wait()
            sd_notify("STOPPING=1", os.environ)
            await tls.close()
    finally:
        link.close()
        store.close()


def _blob_remote(settings: Settings) -> BlobRemote | None:
    """The bucket of /etc/bindrop/care.env (BINDROP_S3_*), of which the blob store is then
    a cache: every upload is written there too. None without one (or with broken settings,
    said in the log: the hub serves on without)."""
    from bindrop.care.config import load_care_settings
    from bindrop.moving.bucket import BlobBucket

    try:
        s3 = load_care_settings(settings, os.environ).s3
    except BindropError as exc:
        logging.getLogger("bindrop.hub").warning("no bucket for release blobs: %s", exc.message)
        return None
    return BlobBucket(s3) if s3 is not None else None
