"""The hub: the only writer to systemd; state store, per-app actors, reconcile, health checks."""
