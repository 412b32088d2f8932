// End to end: apps on openai 4.x, 5.x and 6.x (node/test/sdk4|5|6), each as CommonJS and as ESM,
// run the scenarios in apps/scenarios.cjs against the project's fault simulator with the hook
// exporting to the real collector (`streamtriage serve`); the labels come back through the
// collector's API. tests/node_hook/test_node_hook.py starts both servers and runs this file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCENARIOS = path.join(HERE, 'apps', 'scenarios.cjs');
const SDKS = ['sdk4', 'sdk5', 'sdk6'];
const { SIM_URL, COLLECTOR_URL, EXPECTED } = {
  SIM_URL: process.env.STREAMTRIAGE_SIM_URL,
  COLLECTOR_URL: process.env.STREAMTRIAGE_COLLECTOR_URL,
  EXPECTED: process.env.STREAMTRIAGE_EXPECTED,
};

/** The app's entry point: how a CommonJS or an ESM app loads openai and the hook. */
function entry(kind, hook, service) {
  const inst = hook ? `instrument({ endpoint: ${JSON.stringify(COLLECTOR_URL)}, serviceName: '${service}' })` : 'null';
  const run = `runScenarios(OpenAI, otel, { baseURL: ${JSON.stringify(SIM_URL)} })`;
  const print = 'for (const r of out) console.log(JSON.stringify(r)); if (h) await h.shutdown();';
  if (kind === 'cjs') {
    return `const { instrument } = require('streamtriage'); const h = ${inst};
      const OpenAI = require('openai'); const otel = require('@opentelemetry/api');
      const { runScenarios } = require(${JSON.stringify(SCENARIOS)});
      (async () => { const out = await ${run}; ${print} })();`;
  }
  return `import { instrument } from 'streamtriage'; import OpenAI from 'openai'; import * as otel from '@opentelemetry/api';
    const h = ${inst}; if (h && !(await h.ready)) throw new Error('ESM openai not patched');
    const { runScenarios } = (await import(${JSON.stringify(pathToFileURL(SCENARIOS).href)})).default;
    const out = await ${run}; ${print}`;
}

/** Run one app to its end; its stdout's JSON lines are the scenario runs. */
function runApp(sdk, kind, hook) {
  const args = kind === 'cjs' ? ['-e'] : ['--input-type=module', '-e'];
  const service = `node-${sdk}-${kind}`;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...args, entry(kind, hook, service)], { cwd: path.join(HERE, sdk),
      stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 60000);
    p.on('close', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${service} exited ${code}: ${err.slice(-2000)}`));
      resolve(out.split('\n').filter((l) => l.startsWith('{')).map((l) => ({ ...JSON.parse(l), sdk, kind })));
    });
  });
}

async function api(method, url) {
  const r = await fetch(COLLECTOR_URL + url, { method });
  assert.equal(r.status, 200, `${method} ${url}: ${r.status}`);
  return r.json();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('servers are given (run through tests/node_hook/test_node_hook.py)', () => {
  assert.ok(SIM_URL && COLLECTOR_URL && EXPECTED, 'STREAMTRIAGE_SIM_URL, STREAMTRIAGE_COLLECTOR_URL and STREAMTRIAGE_EXPECTED must be set');
});

test('openai 4.x/5.x/6.x x CommonJS/ESM: labels and outcomes as the Python hook gets them; the app sees the same', { skip: false }, async (t) => {
  const expected = JSON.parse(readFileSync(EXPECTED, 'utf8'));
  const combos = SDKS.flatMap((sdk) => ['cjs', 'esm'].map((kind) => [sdk, kind]));
  const hooked = (await Promise.all(combos.map(([sdk, kind]) => runApp(sdk, kind, true)))).flat();
  const bare = (await Promise.all(combos.map(([sdk, kind]) => runApp(sdk, kind, false)))).flat();
  const { SCENARIOS: table } = (await import(pathToFileURL(SCENARIOS).href)).default;
  assert.equal(hooked.length, combos.length * Object.keys(table).length);

  await t.test('differential: the app sees the same with and without the hook', () => {
    const view = (runs) => runs.map((r) => `${r.sdk}/${r.kind}/${r.name}: ${r.app_saw}`);
    assert.deepEqual(view(hooked), view(bare));
  });

  await sleep(1000);
  await api('POST', '/api/classify');
  await sleep(500);
  await api('POST', '/api/classify');
  const incidents = await api('GET', '/api/incidents?since=1h&limit=10000');
  const byTrace = new Map();
  for (const lb of incidents) byTrace.set(lb.TraceId, [...(byTrace.get(lb.TraceId) || []), [lb.KbId || null, lb.Category || null]]);

  for (const run of hooked) {
    await t.test(`${run.sdk} ${run.kind} ${run.name}`, async () => {
      const want = expected[run.catalogue];
      assert.notEqual(want, undefined, `no expectation for ${run.catalogue}`);
      assert.deepEqual(byTrace.get(run.trace_id) || [], want ? [want] : [], `labels of ${run.name} (app saw: ${run.app_saw})`);
      const stream = await api('GET', `/api/streams/${run.trace_id}`);
      const attrs = stream.call && stream.call.SpanAttributes;
      assert.ok(attrs, `no call span stored for ${run.name}`);
      assert.equal(attrs['streamtriage.outcome'], table[run.name].outcome);
      assert.equal(attrs['streamtriage.sdk.name'], 'openai-node');
      assert.equal(attrs['streamtriage.sdk.version'].split('.')[0], run.sdk.slice(3));
      assert.equal(attrs['streamtriage.transport.name'], run.sdk === 'sdk4' ? 'node-fetch' : 'undici');
    });
  }
});
