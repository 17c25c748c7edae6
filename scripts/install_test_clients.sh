#!/usr/bin/env bash
# Installs the clients the server end-to-end tests talk to `vllm serve` with (the official
# `openai` npm package, pinned in tests/server/package.json) into tests/server/node_modules.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/tests/server"
if ! command -v npm >/dev/null; then
  echo "install_test_clients.sh: npm is missing (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm install --no-audit --no-fund --loglevel=error
fi
node -e "import('openai').then(m => console.log('openai ' + (m.VERSION ?? 'installed')))"
