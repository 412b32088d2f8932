// End to end: apps on openai 4.x, 5.x and 6.x (node/test/sdk4|5|6), each as CommonJS and as ESM,
// drive the simulator's scenario catalogue (apps/scenarios.cjs) with the hook exporting to the real
// collector (`streamtriage serve`); labels and stored call spans come back through the collector's
// API. tests/node_hook/test_node_hook.py starts both servers, writes the catalogue's specs (call,
// fault, expected label and outcome) and runs this file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCENARIOS = path.join(HERE, 'apps', 'scenarios.cjs');
const SDKS = ['sdk4', 'sdk5', 'sdk6'];
const SIM_URL = process.env.STREAMTRIAGE_SIM_URL;
const COLLECTOR_URL = process.env.STREAMTRIAGE_COLLECTOR_URL;
const SPECS = process.env.STREAMTRIAGE_SPECS;
// The issue's must-shows: a mid-stream cut, a chat stream without finish_reason (raw and through
// ChatCompletionStream), an Assistants stream without a terminal run event, a createAndPoll that
// never finishes, and a healthy stream.
const MUST_SHOW = ['chat-cut-fin', 'chat-finish-absent', 'chat-finish-absent-helper', 'runs-stream-no-terminal',
  'runs-poll-stuck-queued', 'chat-healthy'];

const SSE_ERR = ['llm/sse-error-event-mid-stream', 'incomplete_stream'];
const LENGTH = ['llm/finish-reason-length-output-cap', 'truncation'];
/**
 * Where openai-node itself behaves differently from openai-python, so the call ends differently
 * (what the hook records and the label follow what the Node app saw). `sdks`: only those majors.
 */
const NODE_DIFFERS = {
  // openai-node's `timeout` ends when the headers arrive; there is no idle timeout mid-body, so a
  // 1 s stall is waited out and the answer completes (as Python's shorter stalls do: no incident).
  'chat-stall-timeout': [{ outcome: 'completed', label: null }],
  'responses-stall-timeout': [{ outcome: 'completed', label: null }],
  'runs-stream-stall-timeout': [{ outcome: 'completed', label: null }],
  // ChatCompletionStream raises LengthFinishReasonError / ContentFilterFinishReasonError only
  // when parsing structured output; the plain helper returns the completion.
  'chat-length-helper': [{ outcome: 'completed', label: LENGTH }],
  'chat-content-filter-helper': [{ outcome: 'completed' }],
  // ResponseStream.finalResponse() returns the last snapshot instead of raising.
  'responses-no-terminal-helper': [{ outcome: 'no_terminal' }],
  'responses-incomplete-helper': [{ outcome: 'completed' }],
  // 4.x raises APIError for Responses' flat `error` event: not swallowed there.
  'responses-error-flat': [{ sdks: ['4'], label: SSE_ERR }],
  // 4.x's AssistantStream does not take thread.run.incomplete as the final run and raises
  // "Final run has not been received" although the terminal event arrived.
  'runs-stream-incomplete': [{ sdks: ['4'], outcome: 'error' }],
};

/**
 * Catalogue calls with no Node driver: the Python app's own parser traps (`chunk.choices[0]` on the
 * usage chunk: IndexError; `to_dict()['finish_reason']`: KeyError). In Node the first reads
 * `undefined` without throwing, and an exception thrown inside a `for await` body reaches the hook
 * only as the loop's `return()` (a `break`), so neither story exists as such in a Node app.
 */
const NOT_DRIVEN = ['chat.create_stream_index0', 'chat.create_stream_dict'];

/** The scenario's last SDK call (what the catalogue's expected outcome describes): the latest call span
 * that is not inside another call (a poll helper's create is). */
function lastCall(spans) {
  const calls = spans.filter((sp) => sp.span_attributes['streamtriage.span'] === 'call');
  const ids = new Set(calls.map((sp) => sp.span_id));
  const top = calls.filter((sp) => !ids.has(sp.parent_span_id));
  return top.sort((a, b) => Number(BigInt(a.timestamp_ns) - BigInt(b.timestamp_ns)))[top.length - 1];
}

/**
 * The app's entry point: how an app loads openai and the hook. `cjs` / `esm`: instrument() in a
 * CommonJS or an ESM app; `instrumentation`: a CommonJS app that sets up its own tracer provider and
 * registers StreamTriageInstrumentation; `register`: an ESM app run with `--import streamtriage/register`.
 */
function entry(kind, hook, service, names) {
  const inst = hook ? `instrument({ endpoint: ${JSON.stringify(COLLECTOR_URL)}, serviceName: '${service}' })` : 'null';
  const specs = `Object.fromEntries(Object.entries(JSON.parse(readFileSync(${JSON.stringify(SPECS)}, 'utf8')))`
    + `.filter(([n]) => ${names ? `${JSON.stringify(names)}.includes(n)` : 'true'}))`;
  const run = `runScenarios(OpenAI, otel, { baseURL: ${JSON.stringify(SIM_URL)}, specs: ${specs} })`;
  const print = 'for (const r of out) console.log(JSON.stringify(r)); if (h) await h.shutdown();';
  if (kind === 'instrumentation') {
    return `const { StreamTriageInstrumentation } = require('streamtriage');
      const { registerInstrumentations } = require('@opentelemetry/instrumentation');
      const { NodeTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-node');
      const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
      const { resourceFromAttributes } = require('@opentelemetry/resources');
      const provider = new NodeTracerProvider({ resource: resourceFromAttributes({ 'service.name': '${service}' }),
        spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: ${JSON.stringify(`${COLLECTOR_URL}/v1/traces`)} }))] });
      provider.register();
      registerInstrumentations({ instrumentations: [new StreamTriageInstrumentation()] });
      const h = provider; const OpenAI = require('openai'); const otel = require('@opentelemetry/api');
      const { readFileSync } = require('node:fs'); const { runScenarios } = require(${JSON.stringify(SCENARIOS)});
      (async () => { const out = await ${run}; ${print} })();`;
  }
  if (kind === 'register') {
    return `import OpenAI from 'openai'; import * as otel from '@opentelemetry/api'; import { readFileSync } from 'node:fs';
      const h = null; const { runScenarios } = (await import(${JSON.stringify(pathToFileURL(SCENARIOS).href)})).default;
      const out = await ${run}; ${print}`;
  }
  if (kind === 'cjs') {
    return `const { instrument } = require('streamtriage'); const h = ${inst};
      const OpenAI = require('openai'); const otel = require('@opentelemetry/api'); const { readFileSync } = require('node:fs');
      const { runScenarios } = require(${JSON.stringify(SCENARIOS)});
      (async () => { const out = await ${run}; ${print} })();`;
  }
  return `import { instrument } from 'streamtriage'; import OpenAI from 'openai'; import * as otel from '@opentelemetry/api';
    import { readFileSync } from 'node:fs';
    const h = ${inst}; if (h && !(await h.ready)) throw new Error('ESM openai not patched');
    const { runScenarios } = (await import(${JSON.stringify(pathToFileURL(SCENARIOS).href)})).default;
    const out = await ${run}; ${print}`;
}

/** Run one app to its end; its stdout's JSON lines are the scenario runs. */
function runApp(sdk, kind, hook, names) {
  const service = `node-${sdk}-${kind}`;
  const args = { cjs: ['-e'], instrumentation: ['-e'], esm: ['--input-type=module', '-e'],
    register: ['--import', 'streamtriage/register', '--input-type=module', '-e'] }[kind];
  const env = { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: COLLECTOR_URL, OTEL_SERVICE_NAME: service };
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [...args, entry(kind, hook, service, names)], { cwd: path.join(HERE, sdk),
      stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 120000);
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

test('servers and specs are given (run through tests/node_hook/test_node_hook.py)', () => {
  assert.ok(SIM_URL && COLLECTOR_URL && SPECS, 'STREAMTRIAGE_SIM_URL, STREAMTRIAGE_COLLECTOR_URL and STREAMTRIAGE_SPECS must be set');
});

test('openai 4.x/5.x/6.x x CommonJS/ESM: labels and outcomes as the Python hook gets them; the app sees the same', async (t) => {
  const specs = JSON.parse(readFileSync(SPECS, 'utf8'));
  const { DRIVERS, HANGS } = (await import(pathToFileURL(SCENARIOS).href)).default;
  const undriven = [...new Set(Object.values(specs).map((s) => s.call).filter((c) => !DRIVERS[c]))].sort();
  assert.deepEqual(undriven, [...NOT_DRIVEN].sort(), 'every catalogue call has a Node driver or a reason not to');
  const combos = SDKS.flatMap((sdk) => ['cjs', 'esm'].map((kind) => [sdk, kind]));
  // Three apps at a time: the machine is small, and the scenarios' timings must hold.
  const hooked = [];
  const bare = [];
  for (const group of [combos.slice(0, 3), combos.slice(3)]) {
    hooked.push(...(await Promise.all(group.map(([sdk, kind]) => runApp(sdk, kind, true)))).flat());
    bare.push(...(await Promise.all(group.map(([sdk, kind]) => runApp(sdk, kind, false)))).flat());
  }
  // The other two ways in, on 6.x: an app that registers the Instrumentation itself, and --import.
  for (const kind of ['instrumentation', 'register']) hooked.push(...await runApp('sdk6', kind, true, MUST_SHOW));
  for (const [sdk, kind] of [...combos, ['sdk6', 'instrumentation'], ['sdk6', 'register']]) {
    const names = new Set(hooked.filter((r) => r.sdk === sdk && r.kind === kind).map((r) => r.name));
    for (const name of MUST_SHOW) assert.ok(names.has(name), `${sdk} ${kind} did not run ${name}`);
    if (kind !== 'cjs' && kind !== 'esm') continue;
    const expected = Object.entries(specs).filter(([n, sp]) => DRIVERS[sp.call] && !(HANGS[n] || []).includes(sdk.slice(3)));
    assert.deepEqual([...names].sort(), expected.map(([n]) => n).sort(), `${sdk} ${kind} ran every scenario it can`);
  }
  t.diagnostic(`${hooked.length} scenario runs; not driven in Node: ${NOT_DRIVEN.join(', ')}`);

  await t.test('differential: the app sees the same with and without the hook', () => {
    const view = (runs) => runs.filter((r) => r.kind === 'cjs' || r.kind === 'esm')
      .map((r) => `${r.sdk}/${r.kind}/${r.name}: ${r.app_saw}`);
    assert.deepEqual(view(hooked), view(bare));
  });

  await sleep(1000);
  await api('POST', '/api/classify');
  await sleep(500);
  await api('POST', '/api/classify');
  const incidents = await api('GET', '/api/incidents?since=1h&limit=10000');
  const byTrace = new Map();
  for (const lb of incidents) byTrace.set(lb.trace_id, [...(byTrace.get(lb.trace_id) || []), [lb.kb_id || null, lb.category || null]]);

  for (const run of hooked) {
    await t.test(`${run.sdk} ${run.kind} ${run.name}`, async () => {
      const major = run.sdk.slice(3);
      const spec = { ...specs[run.name] };
      for (const d of NODE_DIFFERS[run.name] || []) if (!d.sdks || d.sdks.includes(major)) Object.assign(spec, d);
      // A trace can hold several labelled calls (a poll helper and the create it made): its labels as a set.
      const found = [...new Map((byTrace.get(run.trace_id) || []).map((l) => [l.join('|'), l])).values()];
      assert.deepEqual(found, spec.label ? [spec.label] : [],
        `labels of ${run.name} (app saw: ${run.app_saw})`);
      const stream = await api('GET', `/api/streams/${run.trace_id}`);
      const last = lastCall(stream.spans || []);
      const attrs = last && last.span_attributes;
      assert.ok(attrs, `no call span stored for ${run.name}`);
      assert.equal(attrs['streamtriage.outcome'], spec.outcome, `outcome of ${run.name} (app saw: ${run.app_saw})`);
      assert.equal(attrs['streamtriage.sdk.name'], 'openai-node');
      assert.equal(attrs['streamtriage.sdk.version'].split('.')[0], run.sdk.slice(3));
      assert.equal(attrs['streamtriage.transport.name'], run.sdk === 'sdk4' ? 'node-fetch' : 'undici');
    });
  }
});
