#!/usr/bin/env bash
# Installs the npm packages the tests talk to vllm-cpp with, each folder from its lock file:
#   tests/server      the official `openai` client (the server end-to-end tests)
#   tests/structured  ajv, the independent JSON Schema validator of constrained generation
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if ! command -v npm >/dev/null; then
  echo "install_test_clients.sh: npm is missing (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
for dir in tests/server tests/structured; do
  cd "$root/$dir"
  if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  else
    npm install --no-audit --no-fund --loglevel=error
  fi
done
cd "$root/tests/server"
node -e "import('openai').then(m => console.log('openai ' + (m.VERSION ?? 'installed')))"
