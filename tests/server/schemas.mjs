// What the end-to-end tests check answers with: ajv (JSON Schema 2020-12 with formats, installed
// with the structured-outputs tests' clients in tests/structured/node_modules), and the tool
// argument schema the tool-calling tests share.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ROOT } from './harness.mjs';

const require = createRequire(path.join(ROOT, 'tests/structured/package.json'));
const Ajv2020 = require('ajv/dist/2020.js').default ?? require('ajv/dist/2020.js');
const addFormats = require('ajv-formats').default ?? require('ajv-formats');
export const ajv = new Ajv2020({ strict: false });
addFormats(ajv);

// Asserts that `doc` is valid under `schema` (the message names what failed and `what`); returns doc.
export function validates(schema, doc, what = JSON.stringify(doc)) {
  const validate = ajv.compile(schema);
  assert.ok(validate(doc), `${ajv.errorsText(validate.errors)}: ${what}`);
  return doc;
}

// get_weather's parameters: closed, so a forced call's arguments are fully determined by the grammar.
export const WEATHER = {
  type: 'object',
  properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] }, days: { type: 'integer', minimum: 1, maximum: 7 } },
  required: ['city', 'days'],
  additionalProperties: false,
};
