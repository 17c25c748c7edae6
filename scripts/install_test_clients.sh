#!/usr/bin/env bash
# Installs the npm packages the tests talk to vllm-cpp with, each folder from its lock file:
#   tests/server      the server end-to-end tests' clients: the official `openai` client, and the
#                     agent frameworks LangChain JS (@langchain/openai, @langchain/core) and the
#                     Vercel AI SDK (ai, @ai-sdk/openai-compatible), with zod for their schemas
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
node -e '
  const fs = require("fs");
  for (const d of Object.keys(JSON.parse(fs.readFileSync("package.json", "utf8")).dependencies))
    console.log(d + " " + JSON.parse(fs.readFileSync(`node_modules/${d}/package.json`, "utf8")).version);'
