"""Server care: backups of every SQLite database, disk watch, garbage collection.

Runs on the server itself, inside the care units the hub starts (``bindrop care-run …``,
see ``bindrop.hub.care``): it reads and writes files under the settings' paths directly and
reports to the hub only through the control API client. The API reads listings and manifests
through it too.
"""
