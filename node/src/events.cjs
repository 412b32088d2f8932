'use strict';
/**
 * What one stream event means for the span contract (§2, §4.3): its type, whether it is a
 * content delta, its delta bytes, and whether it is the protocol's terminal marker.
 * Events are the SDK's parsed values: chat chunks, Responses events (`{type, ...}`) and
 * Assistants events (`{event, data}`).
 */

const RUN_TERMINALS = new Set(['thread.run.completed', 'thread.run.failed', 'thread.run.cancelled',
  'thread.run.expired', 'thread.run.incomplete', 'thread.run.requires_action']);
const RESPONSE_TERMINALS = new Set(['response.completed', 'response.incomplete', 'response.failed']);
const RUN_DELTAS = new Set(['thread.message.delta', 'thread.run.step.delta']);

/** @param {unknown} s */
const utf8 = (s) => (typeof s === 'string' ? Buffer.byteLength(s) : 0);

/**
 * @typedef {object} EventFacts
 * @property {string} type
 * @property {boolean} delta
 * @property {number} bytes
 * @property {boolean} terminal
 * @property {string} [status]
 * @property {string} [finishReason]
 * @property {string} [errorCode]
 */

/**
 * @param {string} api
 * @param {any} ev
 * @param {import('./calls.cjs').Call} call facts that outlive the event (finish reasons, usage, ids) go here
 * @returns {EventFacts}
 */
function readEvent(api, ev, call) {
  if (ev && typeof ev.event === 'string' && 'data' in ev) return readRunEvent(ev, call);
  if (ev && ev.object === 'chat.completion.chunk') return readChatChunk(ev, call);
  if ((api === 'chat.completions' && ev && !ev.choices) || (api === 'assistants.runs' && ev && !ev.event)) {
    // An error object the SDK yields as if it were an event (a bare `event: error` payload).
    call.errorEventSeen = true;
    if (ev.code) call.errorCode = String(ev.code);
    return { type: 'error', delta: false, bytes: 0, terminal: false, errorCode: call.errorCode };
  }
  if (ev && typeof ev.type === 'string') return readResponseEvent(ev, call);
  return { type: String((ev && (ev.object || ev.type)) || 'unknown'), delta: false, bytes: 0, terminal: false };
}

/** @param {any} ch @param {any} call @returns {EventFacts} */
function readChatChunk(ch, call) {
  let bytes = 0;
  let finish;
  let delta = true;
  const choices = Array.isArray(ch.choices) ? ch.choices : [];
  for (const c of choices) {
    const d = c.delta || {};
    bytes += utf8(d.content) + utf8(d.refusal);
    if (Array.isArray(d.tool_calls)) for (const t of d.tool_calls) bytes += utf8(t.function && t.function.arguments);
    if (c.finish_reason) {
      delta = false;
      finish = finish || c.finish_reason;
      call.finishReasons[c.index || 0] = c.finish_reason;
    } else if (call.finishReasons[c.index || 0] === undefined) {
      call.finishReasons[c.index || 0] = '';
    }
  }
  if (!choices.length) delta = false;
  if (ch.model) call.responseModel = ch.model;
  if (ch.id) call.responseId = ch.id;
  if (ch.usage) call.usage = ch.usage;
  return { type: 'chat.completion.chunk', delta, bytes, terminal: false, finishReason: finish };
}

/** The object an event carries (a response, a run): its facts go to the call, its status to the event. */
function absorbInto(facts, obj, call) {
  const code = call.errorCode;
  call.absorbObject(obj);
  if (obj.status) facts.status = obj.status;
  if (call.errorCode !== code) facts.errorCode = call.errorCode;
}

/** @param {any} ev @param {any} call @returns {EventFacts} */
function readResponseEvent(ev, call) {
  const type = ev.type;
  const delta = type.endsWith('.delta');
  const facts = { type, delta, bytes: delta ? utf8(ev.delta) : 0, terminal: RESPONSE_TERMINALS.has(type) };
  if (ev.response && typeof ev.response === 'object') absorbInto(facts, ev.response, call);
  if (type === 'error') {
    call.errorEventSeen = true;
    if (ev.code) facts.errorCode = call.errorCode = String(ev.code);
  }
  return facts;
}

/** @param {any} ev @param {any} call @returns {EventFacts} */
function readRunEvent(ev, call) {
  const type = ev.event;
  const d = ev.data || {};
  const facts = { type, delta: RUN_DELTAS.has(type), bytes: 0, terminal: RUN_TERMINALS.has(type) };
  if (type === 'thread.message.delta' && d.delta && Array.isArray(d.delta.content)) {
    for (const c of d.delta.content) facts.bytes += utf8(c.text && c.text.value);
  }
  if (type.startsWith('thread.run.') && !type.startsWith('thread.run.step')) absorbInto(facts, d, call);
  if (type === 'error') {
    call.errorEventSeen = true;
    if (d.code) facts.errorCode = call.errorCode = String(d.code);
  }
  return facts;
}

module.exports = { readEvent, RUN_TERMINALS, RESPONSE_TERMINALS };
