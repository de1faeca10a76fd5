#!/usr/bin/env bash
# Creates ./.venv-py (torch 2.13.0, pandas, pytest, maturin, xautodl for the
# parity tests) and installs the package from ./python, built against that
# torch. Idempotent: installed pieces are kept; the package is rebuilt
# (cargo builds only what changed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-py"
py="${PYTHON:-python3}"
pip() { "$venv/bin/python" -m pip --disable-pip-version-check -q "$@"; }
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
if [ ! -f "$venv/.deps-1" ]; then
  echo "rbflex: installing torch 2.13.0, pandas, pytest, maturin into $venv ..." >&2
  # xautodl 1.0.0 is an sdist whose setup.py imports pkg_resources (gone from
  # setuptools 70); torch then brings the setuptools it needs
  pip install "setuptools<70" wheel
  pip install --no-build-isolation --no-deps xautodl==1.0.0
  pip install torch==2.13.0 pandas pytest numpy "maturin>=1.5,<2"
  touch "$venv/.deps-1"
fi
# built with the venv's own torch (torch-sys runs `python` when VIRTUAL_ENV is set)
export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
# the engine's own target folder: dependencies built by `make test-rust` are reused
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
pip install --no-build-isolation "$root/python"
