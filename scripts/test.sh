#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs the real parts the tests run
# against (nginx-rtmp, ffmpeg, Prometheus, Alertmanager, Chromium), the package with its
# test extras, then lints, type-checks and runs pytest. Idempotent; run it as root (or
# with sudo) the first time so apt-get can install.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(nginx-light libnginx-mod-rtmp ffmpeg prometheus prometheus-alertmanager chromium coturn icecast2 cloud-init docker-compose)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# (The tests start their own nginx and Prometheus on free ports; any system services the
# packages started are left alone.)

echo "== installing jalsa with its test extras"
python3 -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "^WARNING: Running pip as" || true

echo "== ruff"
python3 -m ruff check .
python3 -m ruff format --check .
echo "== mypy"
python3 -m mypy
echo "== import-linter (the layers of docs/architecture.md)"
lint-imports --no-cache --no-logo
echo "== vulture (dead code)"
python3 -m vulture
echo "== pytest (JALSA_TEST_WORKERS=${JALSA_TEST_WORKERS:-2} workers; 0 runs in this process)"
# Two workers, each module whole on one of them, the real-time modules first
# (tests/conftest.py). -p no:benchmark: pytest-benchmark, if some other package installed
# it, refuses to run beside xdist.
exec python3 -m pytest -p no:cacheprovider -p no:benchmark \
  -n "${JALSA_TEST_WORKERS:-2}" --dist loadgroup "$@"
