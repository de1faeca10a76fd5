#!/usr/bin/env bash
# Ensures libtorch (from the PyPI torch 2.13.0 wheel, as tch 0.26 expects) is
# installed in ./.venv, exports LIBTORCH for the build, then runs "$@".
# Idempotent: the install happens once; later calls only export.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3}"
site() { "$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"; }
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv"
fi
torch_dir="$(site)/torch"
if [ ! -f "$torch_dir/lib/libtorch_cpu.so" ] || [ ! -f "$venv/.libtorch-2.13.0" ]; then
  echo "rbflex: installing libtorch (torch==2.13.0 wheel) into $venv ..." >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    torch==2.13.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
  touch "$venv/.libtorch-2.13.0"
fi
export LIBTORCH="$torch_dir"
export LD_LIBRARY_PATH="$torch_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ "$#" -gt 0 ]; then exec "$@"; fi
