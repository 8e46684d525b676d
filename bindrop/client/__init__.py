"""Clients of the hub: the control API client (``bindrop.client.client.Client``) for the CLI
and the dashboard, and the wire between the hub and its proxies (``proxywire``)."""
