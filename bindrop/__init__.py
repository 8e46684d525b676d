"""bindrop: run your own apps on your own server, systemd-native."""

__version__ = "0.1.0"
