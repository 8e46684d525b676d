#!/usr/bin/env bash
# Sets up everything (scripts/setup.sh) and runs the whole test suite: lint, types,
# unit tests and integration tests against a private systemd.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check bindrop tests
echo "== mypy"; .venv/bin/mypy
echo "== pytest"; .venv/bin/python -m pytest -p no:cacheprovider -ra "$@"
