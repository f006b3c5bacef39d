#!/usr/bin/env bash
# Installs the Debian 12 packages OnlineRl needs to build, run and test, only those missing (idempotent:
# `apt-get update` runs once, and only when something must be installed). Sourced by run.sh and test.sh.
# Usage: source deploy/setup-debian.sh; onlinerl_setup [extra packages...]
# The tensor engine itself (TorchSharp + libtorch 2.10) comes from NuGet with the build: no system libtorch.

# How long to wait for another apt/dpkg (unattended-upgrades, a second shell) to release its lock.
ONLINERL_APT_LOCK_TIMEOUT=${ONLINERL_APT_LOCK_TIMEOUT:-600}

onlinerl_setup() {
  local packages=(
    python3-torch             # /usr/bin/python3 + torch: golden values for the tests, the benchmark references
    libopenblas0-openmp       # a fast BLAS for that torch (the default reference BLAS is ~15x slower: an unfair reference)
    python3-sentencepiece     # Google's sentencepiece: trains and checks the SentencePiece tokenizer tests
    redis-server              # the Redis Streams transport and weight store (tests start their own server)
    prometheus                # tests scrape a running pipeline with a real Prometheus server
    binutils                  # readelf: the TorchSharp tests read libLibTorchSharp.so's version requirements
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
    onlinerl_apt $sudo update && onlinerl_apt $sudo install -y "${missing[@]}" || return 1
  fi

  # Debian's torch must use OpenBLAS, not the reference BLAS that the plain install may select.
  local blas
  blas=$(readlink -f /lib/x86_64-linux-gnu/libblas.so.3 || true)
  if [[ "$blas" != *openblas* ]]; then
    echo "==> switching libblas.so.3 to OpenBLAS for the PyTorch reference (was: ${blas:-none})"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo update-alternatives --set libblas.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 || return 1
    $sudo update-alternatives --set liblapack.so.3-x86_64-linux-gnu /usr/lib/x86_64-linux-gnu/openblas-openmp/liblapack.so.3 || true
  fi

  if ! command -v dotnet >/dev/null 2>&1; then
    echo "error: the .NET SDK 10 (dotnet) is not on PATH; install it first (Debian does not package it)." >&2
    return 1
  fi
  export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}

# Runs `apt-get ARGS` (after an optional "sudo"). While another apt or dpkg holds a lock, it waits and tries
# again, up to ONLINERL_APT_LOCK_TIMEOUT seconds (apt's own DPkg::Lock::Timeout covers dpkg's lock but not the
# package lists' lock of `apt-get update`). Any other failure, or the timeout, stops the set-up with the reason.
onlinerl_apt() {
  local sudo=()
  if [ "$1" = "sudo" ]; then sudo=(sudo); shift; fi
  local log waited=0
  log=$(mktemp)
  until DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get -q -o "DPkg::Lock::Timeout=$ONLINERL_APT_LOCK_TIMEOUT" "$@" >"$log" 2>&1; do
    if grep -qiE 'could not get lock|unable to lock|unable to acquire' "$log" && ((waited < ONLINERL_APT_LOCK_TIMEOUT)); then
      ((waited == 0)) && echo "==> another apt or dpkg holds its lock; waiting up to ${ONLINERL_APT_LOCK_TIMEOUT}s"
      sleep 5
      waited=$((waited + 5))
      continue
    fi
    echo "error: 'apt-get $*' failed; the set-up stops here. Its last lines:" >&2
    tail -n 15 "$log" | sed 's/^/    /' >&2
    if grep -qiE 'could not get lock|unable to lock|unable to acquire' "$log"; then
      echo "    Another apt or dpkg still held its lock after ${ONLINERL_APT_LOCK_TIMEOUT}s: wait for it to finish (or raise" >&2
      echo "    ONLINERL_APT_LOCK_TIMEOUT), then run this command again." >&2
    fi
    rm -f "$log"
    return 1
  done
  rm -f "$log"
}
