"""Moving a server: its whole state as one bundle (export, import), and migrating to another.

Export and import run on the server itself (root): they read and write bindrop's SQLite
database, blobs, each app's data and /etc/bindrop directly. Migrating runs wherever the CLI
runs and drives both servers over SSH.
"""
