"""Clients of the hub: the control API client (``bindrop.client.client.Client``) for the CLI
and the dashboard, and the proxy's side of the stream protocol (``proxywire``)."""
