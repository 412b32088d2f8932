'use strict';
/**
 * streamtriage for Node.js: the openai-node hook that emits the streamtriage span contract
 * (docs/span-contract.md). CommonJS holds the one copy of the code; the ESM entry (index.js)
 * re-exports it, so an app that loads both never patches twice (Node 20 cannot require() ESM).
 */
const path = require('node:path');
const fs = require('node:fs');
const { pathToFileURL } = require('node:url');
const { createRequire } = require('node:module');
const { safe } = require('./safety.cjs');
const { instrumentOpenAI } = require('./patches.cjs');
const { setupTracing } = require('./setup.cjs');
const { StreamTriageInstrumentation } = require('./instrumentation.cjs');
const { settings, VERSION } = require('./calls.cjs');

/** @param {any} exp a package.json `exports` target @returns {string | undefined} the ESM file */
function importTarget(exp) {
  if (typeof exp === 'string') return exp;
  if (!exp || typeof exp !== 'object') return undefined;
  if (exp['.'] !== undefined) return importTarget(exp['.']);
  for (const k of ['node', 'import', 'default']) {
    const t = importTarget(exp[k]);
    if (t && !t.endsWith('.d.ts') && !t.endsWith('.d.mts')) return t;
  }
  return undefined;
}

/**
 * The `openai` the app resolves from `from`: its CommonJS exports (loaded) and its ESM file URL.
 * @param {string} from a directory
 */
function locateOpenAI(from) {
  const req = createRequire(path.join(from, 'streamtriage-resolve.js'));
  const main = req.resolve('openai');
  let dir = path.dirname(main);
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const esm = importTarget(pkg.exports) || pkg.module;
  return { cjs: () => req('openai'), esm: esm ? pathToFileURL(path.join(dir, esm)).href : undefined };
}

let instrumentation;

/**
 * Instrument the app's `openai` (both the require() and the import build) and set up export.
 *
 * CommonJS apps are covered at once. An ESM app's `import OpenAI from 'openai'` is covered once
 * `ready` resolves (`await instrument(...).ready`), or from the start with
 * `node --import streamtriage/register app.mjs`.
 * @param {{endpoint?: string, serviceName?: string, headers?: Record<string, string>,
 *   coalesceDeltas?: boolean, flushAfterMs?: number, flushAfterEvents?: number, from?: string}} [options]
 * @returns {{forceFlush: () => Promise<void>, shutdown: () => Promise<void>, ready: Promise<boolean>}}
 */
function instrument(options = {}) {
  const handle = safe(() => setupTracing(options)) || { forceFlush: async () => {}, shutdown: async () => {} };
  safe(() => {
    if (options.coalesceDeltas === false) settings.coalesce = false;
    if (options.flushAfterMs) settings.flushAfterMs = options.flushAfterMs;
    if (options.flushAfterEvents) settings.flushAfterEvents = options.flushAfterEvents;
    if (!instrumentation) {
      instrumentation = new StreamTriageInstrumentation();
      instrumentation.enable();
    }
  });
  const located = safe(() => locateOpenAI(options.from || process.cwd()));
  if (located) safe(() => instrumentOpenAI(located.cjs()));
  const ready = located && located.esm
    ? import(located.esm).then((m) => instrumentOpenAI(m), () => false)
    : Promise.resolve(!!located);
  return {
    forceFlush: () => handle.forceFlush().catch(() => {}),
    shutdown: () => handle.shutdown().catch(() => {}),
    ready,
  };
}

module.exports = { instrument, instrumentOpenAI, StreamTriageInstrumentation, version: VERSION };
