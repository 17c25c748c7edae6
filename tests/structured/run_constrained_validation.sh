#!/usr/bin/env bash
# ctest driver: constrained generation (constrained_generation_dump) then the independent check
# (validate_constrained.mjs, ajv). MODEL is a model folder or the name of a test model in
# tests/data/models (its random weights are written first).
#   run_constrained_validation.sh DUMP_BINARY MODEL NUM_RANDOM SEEDS SUITE_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dump=$1 model=$2 random=$3 seeds=$4 suite=$5
if [ ! -d "$here/node_modules/ajv" ]; then
  echo "ajv is missing: run scripts/install_test_clients.sh" >&2
  exit 1
fi
if [ ! -d "$suite" ]; then
  echo "the JSON-Schema-Test-Suite is missing: run scripts/fetch_json_schema_test_suite.sh" >&2
  exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$dump" --model "$model" --out "$out" --random "$random" --seeds "$seeds" --suite "$suite"
node "$here/validate_constrained.mjs" "$out" 10
