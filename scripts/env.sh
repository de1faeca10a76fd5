#!/usr/bin/env bash
# Ensures libtorch (from the PyPI torch 2.13.0 wheel, as tch 0.26 expects) is
# installed in ./.venv, exports LIBTORCH for the build, then runs "$@".
# Idempotent: the install happens once; later calls only export.
#
# `scripts/env.sh --cuda [CMD...]` also installs the CUDA libraries the wheel
# depends on (cuBLAS, cuDNN, ...; about 3 GB), which `--device cuda` loads at
# run time; a machine without them runs on the CPU as before.
set -euo pipefail
cuda=0
if [ "${1:-}" = "--cuda" ]; then cuda=1; shift; fi
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
if [ "$cuda" = 1 ] && [ ! -f "$venv/.cuda-13.0.3" ]; then
  echo "rbflex: installing torch 2.13.0's CUDA 13 libraries into $venv (about 3 GB) ..." >&2
  # torch==2.13.0's own Linux requirements (its METADATA), nothing else
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3" \
    nvidia-cudnn-cu13==9.20.0.48 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.29.7 nvidia-nvshmem-cu13==3.4.5
  touch "$venv/.cuda-13.0.3"
fi
export LIBTORCH="$torch_dir"
export LD_LIBRARY_PATH="$torch_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ "$#" -gt 0 ]; then exec "$@"; fi
