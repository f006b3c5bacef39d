#!/usr/bin/env bash
# Installs the Debian 12 packages OnlineRl needs to build and run, only those missing (idempotent:
# `apt-get update` runs once, and only when something must be installed). Sourced by run.sh and test.sh.
# Usage: source deploy/setup-debian.sh; onlinerl_setup [extra packages...]

onlinerl_setup() {
  local packages=(
    cmake g++                 # builds the native shim
    libtorch-dev              # libtorch 1.13 (CPU): the tensor engine behind OnlineRl.Torch
    libopenblas0-openmp       # fast BLAS for libtorch (the default reference BLAS is ~15x slower)
    python3-torch             # /usr/bin/python3 + torch over the same libtorch: golden values, benchmarks
    redis-server              # the Redis Streams transport and weight store (tests start their own server)
    prometheus                # tests scrape a running pipeline with a real Prometheus server
    chromium                  # tests open the HTML run report in a real headless browser
    "$@"
  )
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # node + npm run the independent tokenizer peers in the tests; any install of them will do.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
  if ((${#missing[@]})); then
    echo "==> installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi

  # libtorch must use OpenBLAS, not the reference BLAS that the plain install may select.
  local blas
  blas=$(readlink -f /lib/x86_64-linux-gnu/libblas.so.3 || true)
  if [[ "$blas" != *openblas* ]]; then
    echo "==> switching libblas.so.3 to OpenBLAS (was: ${blas:-none})"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo update-alternatives --set libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3
    $sudo update-alternatives --set liblapack.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/liblapack.so.3 || true
  fi

  if ! command -v dotnet >/dev/null 2>&1; then
    echo "error: the .NET SDK 10 (dotnet) is not on PATH; install it first (Debian does not package it)." >&2
    return 1
  fi
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}
