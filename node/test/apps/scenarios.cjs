'use strict';
/**
 * An app using openai-node exactly as real apps do, one scenario per parent span (so each lands
 * in a trace of its own), against the project's fault simulator. Shared by the CommonJS and the
 * ESM entry (run.cjs): the caller hands in the `OpenAI` class it loaded and the OpenTelemetry API.
 *
 * Each scenario names the simulator catalogue entry (simulator/scenarios.py) whose label it must
 * get, and the outcome (span contract §4.2) its call span must carry.
 */
const MESSAGES = [{ role: 'user', content: 'Say something about foxes.' }];
const ASSISTANT = 'asst_sim';

/** What the app saw: the error it caught (class and message) or how the stream ended. */
function describe(err, events, extra) {
  if (err) return `${err.constructor && err.constructor.name}: ${err.message} after ${events} events`;
  return `${events} events${extra ? `, ${extra}` : ''}`;
}

/** @type {Record<string, {catalogue: string, outcome: string, run: (c: any, model: (f: string) => string) => Promise<string>}>} */
const SCENARIOS = {
  'chat-healthy': { catalogue: 'chat-healthy', outcome: 'completed', run: (c, m) => chatStream(c, m('healthy')) },
  'chat-cut': { catalogue: 'chat-cut-fin', outcome: 'transport_error', run: (c, m) => chatStream(c, m('cut;after=3')) },
  'chat-finish-absent': { catalogue: 'chat-finish-absent', outcome: 'completed', run: (c, m) => chatStream(c, m('finish-absent')) },
  'chat-finish-absent-helper': { catalogue: 'chat-finish-absent', outcome: 'error', run: (c, m) => chatHelper(c, m('finish-absent')) },
  'chat-early-break': { catalogue: 'chat-early-break', outcome: 'cancelled', run: (c, m) => chatStream(c, m('healthy;n=200;gap=0.01'), 5) },
  'runs-stream-healthy': { catalogue: 'runs-stream-healthy', outcome: 'completed', run: (c, m) => runStream(c, m('healthy')) },
  'runs-stream-no-terminal': { catalogue: 'runs-stream-no-terminal', outcome: 'no_terminal', run: (c, m) => runStream(c, m('no-terminal;done=1')) },
  'runs-poll-stuck-queued': { catalogue: 'runs-poll-stuck-queued', outcome: 'cancelled', run: (c, m) => createAndPoll(c, m('stuck;status=queued')) },
};

async function chatStream(client, model, breakAfter) {
  let n = 0;
  try {
    const stream = await client.chat.completions.create({ model, messages: MESSAGES, stream: true });
    let finish = '';
    for await (const chunk of stream) {
      n += 1;
      finish = (chunk.choices[0] && chunk.choices[0].finish_reason) || finish;
      if (breakAfter && n >= breakAfter) break;
    }
    return describe(null, n, `finish_reason ${finish || 'none'}`);
  } catch (err) {
    return describe(err, n);
  }
}

async function chatHelper(client, model) {
  let n = 0;
  const completions = client.chat.completions.stream ? client.chat.completions : client.beta.chat.completions;
  try {
    const stream = completions.stream({ model, messages: MESSAGES });
    for await (const chunk of stream) n += chunk ? 1 : 0;
    const final = await stream.finalChatCompletion();
    return describe(null, n, `finish_reason ${final.choices[0].finish_reason}`);
  } catch (err) {
    return describe(err, n);
  }
}

async function thread(client) {
  const t = await client.beta.threads.create();
  await client.beta.threads.messages.create(t.id, { role: 'user', content: 'What is the weather in Paris?' });
  return t.id;
}

async function runStream(client, model) {
  let n = 0;
  try {
    const stream = client.beta.threads.runs.stream(await thread(client), { assistant_id: ASSISTANT, model });
    for await (const ev of stream) n += ev ? 1 : 0;
    const run = await stream.finalRun();
    return describe(null, n, `run ${run.status}`);
  } catch (err) {
    return describe(err, n);
  }
}

/** createAndPoll has no deadline of its own; the app gives up after 1 s through an AbortSignal. */
async function createAndPoll(client, model) {
  try {
    const run = await client.beta.threads.runs.createAndPoll(await thread(client), { assistant_id: ASSISTANT, model },
      { pollIntervalMs: 20, signal: AbortSignal.timeout(1000) });
    return describe(null, 0, `run ${run.status}`);
  } catch (err) {
    return describe(err, 0);
  }
}

/**
 * @param {any} OpenAI the client class the app imported
 * @param {any} otel the app's @opentelemetry/api
 * @param {{baseURL: string, names?: string[]}} o
 * @returns {Promise<Array<{name: string, catalogue: string, trace_id: string, app_saw: string}>>}
 */
async function runScenarios(OpenAI, otel, o) {
  const client = new OpenAI({ baseURL: o.baseURL, apiKey: 'sk-sim', maxRetries: 0, timeout: 5000 });
  const tracer = otel.trace.getTracer('streamtriage-node-test-app');
  const model = (fault) => `fault/${fault}`;
  const out = [];
  for (const name of o.names || Object.keys(SCENARIOS)) {
    const sc = SCENARIOS[name];
    await tracer.startActiveSpan(`scenario ${name}`, async (span) => {
      const appSaw = await sc.run(client, model);
      out.push({ name, catalogue: sc.catalogue, trace_id: span.spanContext().traceId, app_saw: appSaw });
      span.end();
    });
  }
  return out;
}

module.exports = { runScenarios, SCENARIOS };
