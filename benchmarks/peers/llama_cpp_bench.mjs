// llama.cpp's speed on a GGUF file, through node-llama-cpp's prebuilt CPU binary: decode tokens/s
// at several numbers of sequences decoded together, and prompt processing (ppN) tokens/s.
//
//   node llama_cpp_bench.mjs --model x.gguf [--threads 2] [--sequences 1,8,32] [--input-len 32]
//                            [--output-len 64] [--pp 512] [--repeats 3]
//
// Decode: S sequences get random prompts of --input-len token ids (evaluated first, not timed),
// then decode --output-len tokens greedily in lockstep: every step queues one token of each
// sequence at once, which node-llama-cpp evaluates as one batch (one llama_decode). Output
// tokens/s = S * output-len / decode time (after two untimed steps). ppN: one sequence evaluates N random token ids in one
// batch (batch size N); best of --repeats. llama.cpp runs with its defaults otherwise (KV cache
// type, flash attention); what it used is printed. Output: one JSON object on stdout.
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

function parseArgs(argv) {
  const args = {threads: 2, sequences: "1,8,32", inputLen: 32, outputLen: 64, pp: 512, repeats: 3};
  for (let i = 2; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`missing value for ${argv[i]}`);
    args[key] = ["model", "sequences"].includes(key) ? value : Number(value);
  }
  if (!args.model) throw new Error("usage: --model x.gguf [--threads 2] [--sequences 1,8,32] ...");
  args.sequences = String(args.sequences).split(",").filter(Boolean).map(Number);
  return args;
}

const args = parseArgs(process.argv);
// Which ggml CPU variant the prebuilt binary loads shows in llama.cpp's log ("libggml-cpu-zen4.so").
const backendLines = [];
const llama = await getLlama({
  gpu: false,
  build: "never",  // the prebuilt binary only: never build llama.cpp from source here
  logLevel: LlamaLogLevel.info,
  logger: (level, message) => {
    if (/ggml-cpu|CPU_REPACK|repack|backend/i.test(message)) backendLines.push(message.trim());
    if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal || level === LlamaLogLevel.warn)
      process.stderr.write(message);
  },
});
const model = await llama.loadModel({modelPath: args.model});
const vocab = model.tokens.vocabularySize ?? 32000;
let seed = 12345;
const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
const randomIds = (n) => Array.from({length: n}, () => 100 + Math.floor(random() * (vocab - 200)));
const now = () => Number(process.hrtime.bigint()) / 1e9;

const info = {
  llama_cpp_release: llama.llamaCppRelease,
  build: llama.buildType,
  gpu: llama.gpu,
  threads: args.threads,
  backend_log: [...new Set(backendLines)].slice(0, 8),
};
const decode = [];
for (const S of args.sequences) {
  const contextSize = Math.max(256, S * (args.inputLen + args.outputLen + 32));
  const context = await model.createContext({
    contextSize,
    sequences: S,
    batchSize: Math.max(512, S * args.inputLen),
    threads: args.threads,
  });
  info.kv_cache = [context.kvCacheKeyType, context.kvCacheValueType];
  info.flash_attention = context.flashAttention;
  info.context_threads = context.currentThreads;
  const seqs = Array.from({length: S}, () => context.getSequence());
  const prompts = seqs.map(() => randomIds(args.inputLen));
  await Promise.all(seqs.map((s, i) => s.evaluateWithoutGeneratingNewTokens(prompts[i].slice(0, -1))));
  let last = prompts.map((p) => p[p.length - 1]);
  // Two untimed steps first (the first decode graphs, first touches of the mapped weights).
  for (let step = 0; step < 2; ++step) {
    const outs = await Promise.all(seqs.map((s, i) => s.controlledEvaluate([[last[i], {generateNext: {token: true}}]])));
    last = outs.map((o) => o[0].next.token);
  }
  const t0 = now();
  for (let step = 0; step < args.outputLen; ++step) {
    const outs = await Promise.all(seqs.map((s, i) => s.controlledEvaluate([[last[i], {generateNext: {token: true}}]])));
    last = outs.map((o) => o[0].next.token);
  }
  const secs = now() - t0;
  decode.push({sequences: S, output_tok_s: (S * args.outputLen) / secs, ms_per_step: (1000 * secs) / args.outputLen});
  for (const s of seqs) s.dispose();
  await context.dispose();
}

let pp = null;
if (args.pp > 0) {
  const context = await model.createContext({
    contextSize: Math.max(args.pp + 64, 1024),
    sequences: 1,
    batchSize: args.pp,
    threads: args.threads,
  });
  const seq = context.getSequence();
  let best = Infinity;
  for (let r = 0; r < args.repeats; ++r) {
    await seq.clearHistory();
    const ids = randomIds(args.pp);
    const t0 = now();
    await seq.evaluateWithoutGeneratingNewTokens(ids);
    best = Math.min(best, now() - t0);
  }
  pp = {tokens: args.pp, tok_s: args.pp / best, seconds: best};
  seq.dispose();
  await context.dispose();
}
process.stdout.write(JSON.stringify({llama_cpp: info, decode, pp}) + "\n");
await model.dispose();
await llama.dispose();
