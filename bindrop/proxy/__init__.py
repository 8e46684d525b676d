"""bindrop's reverse proxy: one process in front of every app, fed by the hub's route stream."""
