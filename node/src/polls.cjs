'use strict';
/**
 * Poll spans (span contract §3): one per status read of a long-lived object (a run, a background
 * response, a vector store file or batch), from the retrieve call to its parsed answer.
 */
const api = require('@opentelemetry/api');
const { nowMs } = require('./safety.cjs');
const { tracer } = require('./calls.cjs');
const { className } = require('./errors.cjs');

const MAX_OBJECTS = 10000;
/** @type {Map<string, {first: number, status?: string, since: number, attempts: number, parent?: any}>} */
const objects = new Map();
const DONE_STATUS = new Set(['completed', 'failed', 'cancelled', 'expired', 'incomplete', 'requires_action']);

/** @param {string} id */
function track(id) {
  let o = objects.get(id);
  if (!o) {
    if (objects.size >= MAX_OBJECTS) objects.delete(objects.keys().next().value);
    o = { first: nowMs(), since: nowMs(), attempts: 0 };
    objects.set(id, o);
  }
  return o;
}

/** Remember the call span that created `id`, so later polls of it join its trace. */
function rememberCreator(id, call) {
  if (id) track(id).parent = call.span;
}

/**
 * Start a poll span for a retrieve of `id`; returns a function that ends it with the answer.
 * @param {{api: string, id: string, threadId?: string, model?: string, helper?: any, intervalMs?: number}} o
 */
function startPoll(o) {
  const obj = track(o.id);
  obj.attempts += 1;
  const parentSpan = o.helper ? o.helper.span : obj.parent;
  const ctx = parentSpan ? api.trace.setSpan(api.context.active(), parentSpan) : api.context.active();
  const span = tracer().startSpan(`poll ${o.api}`, { kind: api.SpanKind.CLIENT, startTime: nowMs(), attributes: {
    'streamtriage.span': 'poll', 'streamtriage.api': o.api, 'streamtriage.object.id': o.id,
    'streamtriage.poll.attempt': obj.attempts } }, ctx);
  if (o.threadId) span.setAttribute('streamtriage.thread.id', o.threadId);
  if (o.model) span.setAttribute('gen_ai.request.model', o.model);
  if (o.intervalMs) span.setAttribute('streamtriage.poll.interval_ms', o.intervalMs);
  return (err, value) => {
    const now = nowMs();
    let status = 'error';
    if (err) span.setAttribute('error.type', className(err));
    else if (value && typeof value === 'object') {
      status = value.status || 'unknown';
      if (o.api === 'vector_stores' && value.file_counts) status = value.file_counts.in_progress > 0 ? 'in_progress' : status;
      if (value.file_counts) span.setAttribute('streamtriage.file_counts.in_progress', value.file_counts.in_progress);
      const e = value.last_error || value.error;
      if (e && e.code) span.setAttribute('streamtriage.error.code', String(e.code));
      if (value.model && !o.model) span.setAttribute('gen_ai.request.model', value.model);
      if (status !== obj.status) { obj.status = status; obj.since = now; }
    }
    span.setAttributes({ 'streamtriage.status': status, 'streamtriage.poll.first_seen_ms': now - obj.first,
      'streamtriage.poll.status_since_ms': now - obj.since });
    span.end(now);
    if (o.helper) {
      o.helper.pollCount += 1;
      if (status !== 'error') o.helper.status = status;
      o.helper.objectId = o.id;
      if (o.threadId) o.helper.threadId = o.threadId;
    }
    if (DONE_STATUS.has(status)) objects.delete(o.id);
  };
}

module.exports = { startPoll, rememberCreator };
