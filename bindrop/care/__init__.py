"""Server care: backups of every SQLite database, disk watch, garbage collection.

Runs on the server itself (``bindrop backup run`` from a systemd timer, or a root CLI): it
reads files under the settings' paths directly and talks to the hub only through the control
API client.
"""
