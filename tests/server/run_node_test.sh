#!/usr/bin/env bash
# Runs one node:test file of the `vllm serve` end-to-end tests. Exit 77 (ctest: skipped) when
# node or the pinned openai client is missing: run scripts/install_test_clients.sh first.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null; then
  echo "node is not installed: skipping the server end-to-end tests" >&2
  exit 77
fi
if [ ! -f "$here/node_modules/openai/package.json" ]; then
  echo "tests/server/node_modules/openai is missing: run scripts/install_test_clients.sh" >&2
  exit 77
fi
exec node --test --test-reporter=spec --test-concurrency=1 "$here/$1"
