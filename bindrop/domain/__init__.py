"""bindrop's domain core: the names, limits, sizes, time spans, hosts, processes and releases
that every layer shares. Pure: the standard library and ``bindrop.errors`` only, no IO.

Import from the module that owns a thing (``bindrop.domain.names``, ``.limits``, ``.sizes``,
``.timespans``, ``.hosts``, ``.processes``, ``.releases``); this package re-exports nothing.
"""
