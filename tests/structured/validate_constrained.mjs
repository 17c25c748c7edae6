// The independent check of constrained generation: every output that finished with "stop"
// (the grammar was complete and the model ended it) must parse as JSON and validate against its
// schema under ajv, the validator most JavaScript clients use. Outputs cut by max_tokens are
// prefixes and are only counted.
//
//   node validate_constrained.mjs OUTPUTS.jsonl [MIN_STOPPED]
//
// Exits 1 if any stopped output fails, or if fewer than MIN_STOPPED outputs stopped (so that a
// run in which nothing finishes cannot pass by validating nothing).
import { readFileSync } from "node:fs";
import Ajv2020 from "ajv/dist/2020.js";
import AjvDraft04 from "ajv-draft-04";
import addFormats from "ajv-formats";

const [file, minStoppedArg] = process.argv.slice(2);
const minStopped = Number(minStoppedArg ?? 1);
const lines = readFileSync(file, "utf8").split("\n").filter((l) => l.trim() !== "");

function validator(draft) {
  const options = { strict: false, allErrors: false, validateFormats: true };
  const ajv = draft === "draft4" ? new AjvDraft04(options) : new Ajv2020(options);
  addFormats(ajv);
  return ajv;
}
const validators = { draft4: validator("draft4"), "2020-12": validator("2020-12") };

let stopped = 0;
let cut = 0;
const failures = [];
for (const line of lines) {
  const out = JSON.parse(line);
  if (out.finish_reason !== "stop") {
    cut += 1;
    continue;
  }
  stopped += 1;
  let doc;
  try {
    doc = JSON.parse(out.text);
  } catch (e) {
    failures.push(`${out.source} seed ${out.seed}: not JSON (${e.message}): ${JSON.stringify(out.text).slice(0, 200)}`);
    continue;
  }
  const ajv = validators[out.draft] ?? validators["2020-12"];
  const validate = ajv.compile(out.schema);
  if (!validate(doc)) {
    failures.push(
      `${out.source} seed ${out.seed}: ${ajv.errorsText(validate.errors)}\n  schema ${JSON.stringify(out.schema)}\n  text ${JSON.stringify(out.text).slice(0, 300)}`,
    );
  }
}
const schemas = new Set(lines.map((l) => JSON.parse(l).source)).size;
console.log(`${lines.length} outputs of ${schemas} schemas: ${stopped} finished with stop, ${cut} cut by max_tokens; ${failures.length} invalid`);
for (const f of failures.slice(0, 20)) console.log("INVALID " + f);
if (failures.length > 0 || stopped < minStopped) {
  if (stopped < minStopped) console.log(`only ${stopped} outputs finished with stop (at least ${minStopped} expected)`);
  process.exit(1);
}
