"""The entry points that are not clients of the control API: the server's processes (``hub``,
``proxy``, ``dashboard serve``), what runs on the server itself (``install``, ``machine``,
``care-run``, ``api-stdio``, ``server export|import|restore`` on local files) and the moves
between servers over SSH (``server setup``, ``migrate``).

The composition root: it may import any part of bindrop, and nothing imports it. The CLI
names each command here in its lazy table ("bindrop.serve.hub:hub"), imported only when that
command runs, so the commands a person runs against a server load only the client.
"""
