#!/usr/bin/env bash
# Installs what cpiscope needs on a fresh Debian machine, skipping what is already there:
#   system: pkg-config, libhdf5-dev, libopenblas-dev (found through pkg-config), libdnnl-dev (oneDNN: bf16
#   matrix products; Debian ships no .pc file for it, so its header is the check)
#   slurm (tests only, with --python; CPISCOPE_SKIP_SLURM=1 skips): slurmctld slurmd slurm-client, for the
#     one-node Slurm test (Tests/python/test_slurm.py); a failed install only makes that test skip
#   python (tests only, with --python): numpy, h5py, xarray, h5netcdf, pytest, tokenizers (the demo test reads answers' first tokens)
set -euo pipefail
need_apt=()
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists hdf5; then need_apt+=(libhdf5-dev); fi
if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openblas; then need_apt+=(libopenblas-dev); fi
[ -f /usr/include/oneapi/dnnl/dnnl.h ] || need_apt+=(libdnnl-dev)
if [ "${1:-}" = "--python" ] && [ "${CPISCOPE_SKIP_BROWSER:-0}" != "1" ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "cpiscope: installing ${need_apt[*]} with apt-get" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ "${1:-}" = "--python" ] && [ "${CPISCOPE_SKIP_SLURM:-0}" != "1" ] && ! command -v slurmctld >/dev/null 2>&1; then
  echo "cpiscope: installing slurmctld slurmd slurm-client with apt-get (the one-node Slurm test)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client >/dev/null; } || echo "cpiscope: Slurm could not be installed; Tests/python/test_slurm.py will skip" >&2
fi
if [ "${1:-}" = "--python" ]; then
  if ! python3 -c "import numpy, h5py, xarray, h5netcdf, pytest, tokenizers" >/dev/null 2>&1; then
    echo "cpiscope: installing numpy h5py xarray h5netcdf pytest tokenizers with pip" >&2
    python3 -m pip install -q numpy h5py xarray h5netcdf pytest tokenizers
  fi
fi
