// The llama.cpp peer: loads a GGUF file with node-llama-cpp's prebuilt CPU binary and, for each
// prompt given as token ids, decodes greedily and prints the generated ids with the top-k log-probs
// of every step, as JSON on stdout.
//
//   node llama_cpp_peer.mjs --model x.gguf --prompts prompts.json [--steps 32] [--top 5] [--threads N]
//
// prompts.json: [[id, id, ...], ...]. Output: {"llama_cpp": {...build...}, "results": [{"ids": [...],
// "top": [[[id, logprob], ...] per step]}, ...]}. The model's own tokenizer is not used: ids in, ids out.
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

function parseArgs(argv) {
  const args = {steps: 32, top: 5, threads: 2, contextSize: 1024};
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`missing value for ${argv[i]}`);
    args[key.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = ["model", "prompts"].includes(key) ? value : Number(value);
  }
  if (!args.model || !args.prompts) throw new Error("usage: --model x.gguf --prompts prompts.json [--steps 32] [--top 5]");
  return args;
}

const args = parseArgs(process.argv);
const prompts = JSON.parse(fs.readFileSync(args.prompts, "utf8"));
// CPU only, and the prebuilt binary only: never build llama.cpp from source here.
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: args.model});
// A float32 KV cache and no flash attention, as our engine computes GGUF models: llama.cpp's
// defaults (a float16 cache; CPU flash attention, which rounds Q, K and V to float16) move
// log-probs by 1e-4 even with float32 weights, and through the activations' int8 quantization
// (a tiny change flips a quant) by 1e-2 with quantized ones. With these settings a float32 GGUF
// agrees with our engine to 1e-5.
const context = await model.createContext({
  contextSize: args.contextSize,
  sequences: 1,
  experimentalKvCacheKeyType: "F32",
  experimentalKvCacheValueType: "F32",
  flashAttention: false,
  ...(args.threads > 0 ? {threads: args.threads} : {}),
});

const results = [];
const sequence = context.getSequence();
for (const prompt of prompts) {
  await sequence.clearHistory();
  const ids = [];
  const top = [];
  // The prompt, then one generated token at a time; each step asks for the next token (greedy:
  // no sampling options) and the whole probability list of the step, sorted by probability.
  let input = prompt.slice(0, -1).map((t) => t);
  let last = prompt[prompt.length - 1];
  for (let step = 0; step < args.steps; ++step) {
    input.push([last, {generateNext: {token: true, probabilities: true}}]);
    const out = await sequence.controlledEvaluate(input);
    const next = out[out.length - 1].next;
    const probs = [...next.probabilities.entries()].slice(0, args.top);
    top.push(probs.map(([id, p]) => [id, Math.log(p)]));
    ids.push(next.token);
    last = next.token;
    input = [];
  }
  results.push({ids, top});
}
sequence.dispose();

const info = {
  build: llama.buildType,
  gpu: llama.gpu,
  llama_cpp_release: llama.llamaCppRelease,
  threads: context.currentThreads,
  kv_cache: [context.kvCacheKeyType, context.kvCacheValueType],
  flash_attention: context.flashAttention,
};
process.stdout.write(JSON.stringify({llama_cpp: info, results}) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
