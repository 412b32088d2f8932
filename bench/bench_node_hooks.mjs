// CPU per stream chunk in a Node.js app: bare openai-node, with streamtriage, and with
// @opentelemetry/instrumentation-openai, on the same simulator stream, in one run.
//
//   bash scripts/node-setup.sh && (cd bench/node && npm ci)
//   python -m streamtriage.cli simulate --port 8787 &
//   node bench/bench_node_hooks.mjs --sim http://127.0.0.1:8787/v1 [--chunks 2000] [--streams 5]
//
// Each variant runs in a process of its own (hooks patch the SDK for the whole process). Spans go
// to a batching processor with an exporter that drops them, the same for both hooks, so the
// numbers are the hooks' own cost, not the network's. CPU is process.cpuUsage() (user + system)
// over the timed streams, divided by the chunks received.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

async function measure(variant, sim, chunks, streams) {
  const require = createRequire(path.join(HERE, 'node', 'bench.js'));
  const otel = require('@opentelemetry/api');
  if (variant !== 'bare') {
    const { NodeTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-node');
    const drop = { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} };
    new NodeTracerProvider({ spanProcessors: [new BatchSpanProcessor(drop)] }).register();
  }
  if (variant === 'otel-openai') {
    const { registerInstrumentations } = require('@opentelemetry/instrumentation');
    const { OpenAIInstrumentation } = require('@opentelemetry/instrumentation-openai');
    registerInstrumentations({ instrumentations: [new OpenAIInstrumentation()] });
  }
  const openai = require('openai');
  if (variant === 'streamtriage') require('streamtriage').instrumentOpenAI(openai);
  const client = new openai.OpenAI({ baseURL: sim, apiKey: 'sk-sim', maxRetries: 0 });
  const model = `fault/healthy;n=${chunks};gap=0`;
  const one = async () => {
    let n = 0;
    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], stream: true });
    for await (const c of stream) n += c ? 1 : 0;
    return n;
  };
  await one(); // warm-up: module loading and JIT, not measured
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  for (let i = 0; i < streams; i++) n += await one();
  const cpu = process.cpuUsage(cpu0);
  void otel;
  return { variant, chunks: n, cpu_us_per_chunk: (cpu.user + cpu.system) / n, wall_ms: performance.now() - t0 };
}

if (process.argv.includes('--child')) {
  const r = await measure(arg('variant'), arg('sim'), Number(arg('chunks')), Number(arg('streams')));
  process.stdout.write(JSON.stringify(r));
} else {
  const sim = arg('sim', 'http://127.0.0.1:8787/v1');
  const chunks = arg('chunks', '2000');
  const streams = arg('streams', '5');
  const rows = [];
  for (const variant of ['bare', 'streamtriage', 'otel-openai']) {
    const p = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', '--variant', variant, '--sim', sim,
      '--chunks', chunks, '--streams', streams], { encoding: 'utf8' });
    if (p.status !== 0) throw new Error(`${variant}: ${p.stderr}`);
    rows.push(JSON.parse(p.stdout));
  }
  const bare = rows[0].cpu_us_per_chunk;
  const sdk = JSON.parse(readFileSync(path.join(HERE, 'node', 'node_modules', 'openai', 'package.json'), 'utf8')).version;
  console.log(`openai-node ${sdk}, `
    + `Node ${process.versions.node}, ${streams} streams x ${chunks} chunks\n`);
  console.log('| variant | CPU per chunk (µs) | over bare (µs) | wall (ms) |');
  console.log('|---|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.variant} | ${r.cpu_us_per_chunk.toFixed(2)} | ${(r.cpu_us_per_chunk - bare).toFixed(2)} | ${r.wall_ms.toFixed(0)} |`);
  }
}
