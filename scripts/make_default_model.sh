#!/usr/bin/env bash
# Writes models/default: the model `vllm serve` and `vllm generate` use when given none.
# For now this is the tiny-phi reference model (recipe weights + the GPT-2 tokenizer), which
# answers gibberish; a small trained model will replace it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/models/default"
[ -f "$out/.complete" ] && exit 0
rm -rf "$out"
src="$root/tests/data/models/tiny-phi"
tok="$root/tests/data/tokenizers/tiny-phi"
"$root/build/release/tools/vllm-make-model" --config "$src/config.json" --out "$out" --seed 11 --dtype float16 \
  --copy "$src/generation_config.json" --copy "$src/tokenizer_config.json" --copy "$tok/vocab.json" --copy "$tok/merges.txt"
touch "$out/.complete"
echo "wrote $out"
