// The hook never throws into the app: odd inputs are refused quietly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { instrumentOpenAI, instrument } from '../src/index.js';

test('instrumentOpenAI refuses what is not an openai module, without throwing', () => {
  for (const mod of [undefined, null, 42, {}, { default: {} }, { OpenAI: class {} }, new Proxy({}, { get() { throw new Error('boom'); } })]) {
    assert.equal(instrumentOpenAI(mod), false);
  }
});

test('instrument() where no openai can be resolved still returns a working handle', async () => {
  const h = instrument({ endpoint: 'http://127.0.0.1:9', serviceName: 't', from: '/' });
  assert.equal(await h.ready, false);
  await h.forceFlush();
  await h.shutdown();
});
