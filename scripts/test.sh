#!/usr/bin/env bash
# Runs the test suites: builds the release preset if needed, then ctest (C++ unit, golden and
# end-to-end tests) and pytest (the Python package, once built). Exit status is non-zero on failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/fetch_tokenizers.sh >/dev/null
scripts/fetch_json_schema_test_suite.sh >/dev/null
[ -f build/release/build.ninja ] || cmake --preset release >/dev/null
cmake --build --preset release
ctest --preset release -j2 "$@"
