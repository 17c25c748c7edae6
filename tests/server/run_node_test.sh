#!/usr/bin/env bash
# Runs one node:test file of the `vllm serve` end-to-end tests. Exit 77 (ctest: skipped) when
# node or a pinned client the file imports (openai, @langchain/openai, ai, ...: package.json) is
# missing: run scripts/install_test_clients.sh first.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null; then
  echo "node is not installed: skipping the server end-to-end tests" >&2
  exit 77
fi
# The packages behind the file's bare imports ('ai', '@langchain/core/tools' -> @langchain/core),
# and openai, which harness users all need.
missing=$(cd "$here" && node -e '
  const fs = require("fs");
  const src = fs.readFileSync(process.argv[1], "utf8");
  const pkgs = new Set(["openai"]);
  for (const m of src.matchAll(/^import [^;]*?from \x27([^.\x27][^\x27]*)\x27/gms)) {
    if (m[1].startsWith("node:")) continue;
    const parts = m[1].split("/");
    pkgs.add(m[1].startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]);
  }
  console.log([...pkgs].filter((p) => !fs.existsSync(`node_modules/${p}/package.json`)).join(" "));' "$here/$1")
if [ -n "$missing" ]; then
  echo "tests/server/node_modules lacks $missing: run scripts/install_test_clients.sh" >&2
  exit 77
fi
exec node --test --test-reporter=spec --test-concurrency=1 "$here/$1"
