// The hook never throws into the app, even when the tracing underneath it fails: with a tracer
// provider whose every span operation throws, the app gets exactly what it gets without the hook.
// A small SSE server here (node:http) plays the API; openai 6.x comes from test/sdk6.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import otel from '@opentelemetry/api';
import { instrumentOpenAI } from '../src/index.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const requireSdk6 = createRequire(path.join(HERE, 'sdk6', 'app.js'));

function chunk(i, finish) {
  return `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm',
    choices: [{ index: 0, delta: finish ? {} : { content: `w${i} ` }, finish_reason: finish || null }] })}\n\n`;
}

/** Chat streams: `cut` ends the socket after two chunks, anything else is a whole answer. */
function server() {
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const { model } = JSON.parse(body);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'transfer-encoding': 'chunked' });
      res.write(chunk(0) + chunk(1));
      if (model === 'cut') { setTimeout(() => res.socket.destroy(), 50); return; }
      res.end(chunk(2, 'stop') + 'data: [DONE]\n\n');
    });
  });
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)));
}

const throwing = () => { throw new Error('tracing is broken'); };
const brokenSpan = new Proxy({}, { get: () => throwing });
const brokenProvider = { getTracer: () => ({ startSpan: () => brokenSpan, startActiveSpan: throwing }) };

async function appSees(OpenAI, baseURL, model) {
  const client = new OpenAI({ baseURL, apiKey: 'k', maxRetries: 0 });
  const seen = [];
  try {
    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], stream: true });
    for await (const c of stream) seen.push(c.choices[0].delta.content || c.choices[0].finish_reason);
    seen.push('end');
  } catch (err) {
    seen.push(`${err.constructor.name}: ${err.message}`);
  }
  return seen;
}

test('a tracer whose spans all throw changes nothing the app sees', async () => {
  const srv = await server();
  const baseURL = `http://127.0.0.1:${srv.address().port}/v1`;
  try {
    const openai = requireSdk6('openai');
    const before = [await appSees(openai.OpenAI, baseURL, 'ok'), await appSees(openai.OpenAI, baseURL, 'cut')];
    otel.trace.setGlobalTracerProvider(brokenProvider);
    assert.equal(instrumentOpenAI(openai), true);
    const after = [await appSees(openai.OpenAI, baseURL, 'ok'), await appSees(openai.OpenAI, baseURL, 'cut')];
    assert.deepEqual(after, before);
    assert.deepEqual(before[0], ['w0 ', 'w1 ', 'stop', 'end']);
    assert.equal(before[1].length, 3); // two chunks, then the cut
  } finally {
    srv.close();
  }
});
