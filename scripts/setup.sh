#!/usr/bin/env bash
# Installs the Debian 12 packages raftkv needs to build and test. Safe to run again: it
# installs only what is missing and does nothing when everything is present.
set -euo pipefail

# Build and test dependencies needed today. Later components add theirs here as they arrive:
# libhiredis-dev (client/), libspdlog-dev and libfmt-dev (logging).
PACKAGES=(
  cmake
  ninja-build
  g++
  pkg-config
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  clang-format
  libleveldb-dev
  libsnappy-dev
  libflatbuffers-dev
  flatbuffers-compiler
  libuv1-dev
  libjemalloc-dev
  libssl-dev
  libhiredis-dev
  libspdlog-dev
  libfmt-dev
  redis-tools
  redis-server
  python3
  gdb
  gnuplot-nox
  linux-perf
  # scripts/bench.sh --etcd: a 3-member etcd cluster driven by wrk. Where a service manager
  # runs, installing etcd-server may also start Debian's own etcd service (ports 2379, 2380);
  # the benchmark's members use other ports and never touch it.
  etcd-server
  etcd-client
  wrk
)

die() {
  echo "setup.sh: $*" >&2
  exit 1
}

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

command -v dpkg-query >/dev/null 2>&1 ||
  die "dpkg-query not found: this script supports Debian 12 (or a derivative) only"

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! is_installed "$pkg"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "setup.sh: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=()
if ((EUID != 0)); then
  command -v sudo >/dev/null 2>&1 ||
    die "not root and sudo is not available; install as root: apt-get install ${missing[*]}"
  SUDO=(sudo)
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update ||
  die "apt-get update failed"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}" ||
  die "apt-get install failed for: ${missing[*]}"

still_missing=()
for pkg in "${missing[@]}"; do
  is_installed "$pkg" || still_missing+=("$pkg")
done
((${#still_missing[@]} == 0)) || die "still not installed after apt-get: ${still_missing[*]}"

echo "setup.sh: installed ${missing[*]}"
