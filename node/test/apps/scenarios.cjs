'use strict';
/**
 * An app using openai-node exactly as real apps do, driving the simulator's scenario catalogue
 * (simulator/scenarios.py): the Python test hands over each scenario's spec (its SDK call, fault
 * model, client options, expected label and outcome), this file makes the same call the Python
 * drivers make (simulator/drivers.py), one scenario per parent span so each lands in a trace of
 * its own. Shared by the CommonJS and the ESM entry: the caller hands in the `OpenAI` class it
 * loaded and its OpenTelemetry API.
 */
const MESSAGES = [{ role: 'user', content: 'Say something about foxes.' }];
const ASSISTANT = 'asst_sim';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @typedef {object} Spec
 * @property {string} call  the catalogue's SDK call kind (`chat.create_stream`, `runs.create_and_poll`, ...)
 * @property {string} model the fault model (`fault/cut;after=3`)
 * @property {number} max_retries
 * @property {number} timeout seconds
 * @property {Record<string, any>} request extra request parameters
 * @property {Record<string, any>} app driver knobs (break_after, deadline, poll_interval_ms, max_polls, ...)
 */

/**
 * Scenarios an openai-node line does not finish in a test's time; the reasons are the SDK's, not
 * the hook's, so they are not run on that line:
 * - node-fetch (4.x) never settles a body whose Content-Length is cut short: the app's await hangs
 *   forever with nothing left to run (Node exits with an unsettled promise);
 * - 6.x sleeps for whatever `Retry-After` says (200 s here) before the retry; 4.x and 5.x fall
 *   back to their own short backoff for a wait of a minute or more.
 */
const HANGS = { 'chat-cut-length': ['4'], 'chat-request-cut': ['4'], 'chat-429-retry-after-long': ['6'] };

/** What the app saw: the error it caught, or how the call ended. */
function describe(err, o) {
  const tail = `${o.events} events${o.polls ? `, ${o.polls} polls` : ''}`;
  const text = err ? `${err.constructor && err.constructor.name}: ${err.message} after ${tail}` : `${tail}${o.end ? `, ${o.end}` : ''}`;
  return text.replace(/_sim\d+/g, '_simN'); // the simulator's object ids differ from run to run
}

const chatHelper = (c) => (c.chat.completions.stream ? c.chat.completions : c.beta.chat.completions);

async function thread(client) {
  const t = await client.beta.threads.create();
  await client.beta.threads.messages.create(t.id, { role: 'user', content: 'What is the weather in Paris?' });
  return t.id;
}

/** A never-ending SDK poll helper gets the app's own deadline (openai-node has none): an AbortSignal. */
const deadline = (spec) => AbortSignal.timeout(Math.max(1000, 1000 * Number(spec.app.deadline || 0)));
const faultHeaders = (spec) => ({ 'x-streamtriage-fault': spec.model.slice('fault/'.length) });

/** @type {Record<string, (c: any, s: Spec, o: any, OpenAI: any) => Promise<void>>} one driver per call kind */
const DRIVERS = {
  async 'chat.create'(c, s, o) {
    const r = await c.chat.completions.create({ model: s.model, messages: MESSAGES, ...s.request });
    o.end = `finish_reason ${r.choices[0].finish_reason}`;
  },
  async 'chat.create_stream'(c, s, o) {
    const stream = await c.chat.completions.create({ model: s.model, messages: MESSAGES, stream: true, ...s.request });
    let finish = 'none';
    for await (const chunk of stream) {
      o.events += 1;
      finish = ((chunk.choices || [])[0] || {}).finish_reason || finish; // an in-band error chunk has no choices
      if (s.app.break_after && o.events >= s.app.break_after) break;
    }
    o.end = `finish_reason ${finish}`;
  },
  async 'chat.create_stream_break'(c, s, o) { await DRIVERS['chat.create_stream'](c, s, o); },
  async 'chat.stream_helper'(c, s, o) {
    const stream = chatHelper(c).stream({ model: s.model, messages: MESSAGES, ...s.request });
    for await (const chunk of stream) o.events += chunk ? 1 : 0;
    o.end = `finish_reason ${(await stream.finalChatCompletion()).choices[0].finish_reason}`;
  },
  async 'responses.create_stream'(c, s, o) {
    const stream = await c.responses.create({ model: s.model, input: 'Say something about foxes.', stream: true, ...s.request });
    for await (const ev of stream) { o.events += 1; o.end = ev.type; }
  },
  async 'responses.stream_helper'(c, s, o) {
    const stream = c.responses.stream({ model: s.model, input: 'Say something about foxes.', ...s.request });
    for await (const ev of stream) o.events += ev ? 1 : 0;
    o.end = `response ${(await stream.finalResponse()).status}`;
  },
  async 'responses.background_poll'(c, s, o) {
    let r = await c.responses.create({ model: s.model, input: 'Write a long report.', background: true, ...s.request });
    while (r.status === 'queued' || r.status === 'in_progress') {
      if (o.polls >= (s.app.max_polls || 8)) { o.end = `gave up at ${r.status}`; return; }
      await sleep(1000 * (s.app.poll_interval || 0.05));
      r = await c.responses.retrieve(r.id);
      o.polls += 1;
    }
    o.end = `response ${r.status}`;
  },
  async 'runs.create_stream'(c, s, o) {
    const stream = await c.beta.threads.runs.create(await thread(c), { assistant_id: ASSISTANT, model: s.model, stream: true, ...s.request });
    for await (const ev of stream) { o.events += 1; o.end = ev.event; }
  },
  async 'runs.stream_handler'(c, s, o) {
    const stream = c.beta.threads.runs.stream(await thread(c), { assistant_id: ASSISTANT, model: s.model, ...s.request });
    for await (const ev of stream) o.events += ev ? 1 : 0;
    o.end = `run ${(await stream.finalRun()).status}`;
  },
  async 'runs.submit_tool_outputs_stream'(c, s, o) {
    const { tid, run } = await runToRequiresAction(c, s, o);
    o.events = 0;
    const body = { tool_outputs: toolOutputs(run) };
    const stream = /^4\./.test(o.sdk) ? c.beta.threads.runs.submitToolOutputsStream(tid, run.id, body)
      : c.beta.threads.runs.submitToolOutputsStream(run.id, { thread_id: tid, ...body });
    for await (const ev of stream) o.events += ev ? 1 : 0;
    o.end = `run ${(await stream.finalRun()).status}`;
  },
  async 'runs.submit_tool_outputs_late'(c, s, o) {
    const { tid, run } = await runToRequiresAction(c, s, o);
    await sleep(1000 * (s.app.tool_seconds || 0.05)); // the slow tool
    const body = { tool_outputs: toolOutputs(run) };
    const after = /^4\./.test(o.sdk) ? await c.beta.threads.runs.submitToolOutputs(tid, run.id, body)
      : await c.beta.threads.runs.submitToolOutputs(run.id, { thread_id: tid, ...body });
    o.end = `run ${after.status}`;
  },
  async 'runs.create_and_poll'(c, s, o) {
    const run = await c.beta.threads.runs.createAndPoll(await thread(c), { assistant_id: ASSISTANT, model: s.model, ...s.request },
      { pollIntervalMs: s.app.poll_interval_ms || 50, ...(s.app.deadline ? { signal: deadline(s) } : {}) });
    o.end = `run ${run.status}`;
  },
  async 'runs.manual_poll'(c, s, o) {
    const tid = await thread(c);
    let run = await c.beta.threads.runs.create(tid, { assistant_id: ASSISTANT, model: s.model, ...s.request });
    while (run.status === 'queued' || run.status === 'in_progress') {
      if (o.polls >= (s.app.max_polls || 8)) { o.end = `gave up at ${run.status}`; return; }
      await sleep(1000 * (s.app.poll_interval || 0.05));
      // 4.x: retrieve(threadId, runId); 5.x and later: retrieve(runId, {thread_id})
      run = /^4\./.test(o.sdk)
        ? await c.beta.threads.runs.retrieve(tid, run.id) : await c.beta.threads.runs.retrieve(run.id, { thread_id: tid });
      o.polls += 1;
    }
    o.end = `run ${run.status}`;
  },
  async 'vector_stores.files.create_and_poll'(c, s, o, OpenAI) { await vectorStore(c, s, o, OpenAI, 'files'); },
  async 'vector_stores.file_batches.create_and_poll'(c, s, o, OpenAI) { await vectorStore(c, s, o, OpenAI, 'fileBatches'); },
};

/** A run streamed until it stops at requires_action (the app's tool must answer). */
async function runToRequiresAction(c, s, o) {
  const tid = await thread(c);
  const stream = c.beta.threads.runs.stream(tid, { assistant_id: ASSISTANT, model: s.model, ...s.request });
  for await (const ev of stream) o.events += ev ? 1 : 0;
  return { tid, run: await stream.finalRun() };
}

const toolOutputs = (run) => ((run.required_action && run.required_action.submit_tool_outputs.tool_calls) || [])
  .map((t) => ({ tool_call_id: t.id, output: '{"temp_c": 21}' }));

async function vectorStore(c, s, o, OpenAI, kind) {
  const vs = c.vectorStores || c.beta.vectorStores;
  const store = await vs.create({ name: 'sim-docs' }, { headers: faultHeaders(s) });
  const file = await OpenAI.toFile(Buffer.from('streamtriage test document\n'), 'notes.txt');
  const upload = await c.files.create({ file, purpose: 'assistants' });
  const body = kind === 'files' ? { file_id: upload.id } : { file_ids: [upload.id] };
  const r = await vs[kind].createAndPoll(store.id, body,
    { pollIntervalMs: s.app.poll_interval_ms || 50, ...(s.app.deadline ? { signal: deadline(s) } : {}) });
  o.end = `${kind} ${r.status}`;
}

/**
 * Run the scenarios this app has a driver for.
 * @param {any} OpenAI the client class the app imported
 * @param {any} otel the app's @opentelemetry/api
 * @param {{baseURL: string, specs: Record<string, Spec>}} opts
 * @returns {Promise<Array<{name: string, trace_id: string, app_saw: string}>>}
 */
async function runScenarios(OpenAI, otel, opts) {
  const tracer = otel.trace.getTracer('streamtriage-node-test-app');
  const sdk = new OpenAI({ apiKey: 'x' }).getUserAgent().replace(/^OpenAI\/JS /, '');
  const out = [];
  for (const [name, spec] of Object.entries(opts.specs)) {
    const drive = DRIVERS[spec.call];
    if (!drive || (HANGS[name] || []).includes(sdk.split('.')[0])) continue;
    const client = new OpenAI({ baseURL: opts.baseURL, apiKey: 'sk-sim', maxRetries: spec.max_retries,
      timeout: Math.round(1000 * spec.timeout) });
    await tracer.startActiveSpan(`scenario ${name}`, async (span) => {
      const o = { events: 0, polls: 0, end: '', sdk };
      let err = null;
      try {
        await drive(client, spec, o, OpenAI);
      } catch (e) {
        err = e;
      }
      out.push({ name, trace_id: span.spanContext().traceId, app_saw: describe(err, o) });
      span.end();
    });
  }
  return out;
}

module.exports = { runScenarios, DRIVERS, HANGS };
