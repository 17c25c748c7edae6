#!/usr/bin/env bash
# Downloads, into .devdeps/ (git-ignored), the Debian packages that the GPU machine's image lacks
# for building vllm-cpp; benchmarks/gpu/run_gpu_bench.sh unpacks them into a private prefix there.
# Carry the folder with the device call (carry: [".devdeps"]).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$root/.devdeps"
cd "$root/.devdeps"
apt-get download nlohmann-json3-dev libpcre2-dev libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 \
  libutf8proc-dev libutf8proc2 libxxhash-dev libxxhash0 libcurl4-openssl-dev libcurl4 libfmt-dev libfmt9 \
  libspdlog-dev libspdlog1.10 libcli11-dev libboost1.74-dev libgtest-dev libssl-dev libssl3 \
  libzmq3-dev libzmq5 cppzmq-dev libsodium23 libpgm-5.3-0 libnorm1
ls -la
