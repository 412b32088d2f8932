'use strict';
/**
 * One SDK call the app makes, as a call span (span contract §1) with its event spans (§2).
 *
 * A call is started by a patched SDK method and finished exactly once: by its stream's end, by
 * the helper that owns the stream, by the parsed response, or by the error the app receives.
 */
const { createHash } = require('node:crypto');
const api = require('@opentelemetry/api');
const { safe, nowMs } = require('./safety.cjs');
const { readEvent } = require('./events.cjs');
const { outcomeOf, exceptionAttributes } = require('./errors.cjs');

const SCOPE = 'streamtriage.instrumentation.openai';
const VERSION = require('../package.json').version;
const OPERATION = { 'chat.completions': 'chat', responses: 'responses', 'assistants.runs': 'invoke_agent',
  'vector_stores.files': 'vector_store_indexing', 'vector_stores.file_batches': 'vector_store_indexing',
  vector_stores: 'vector_store_indexing' };
const FAILED_STATUS = new Set(['failed', 'expired', 'incomplete', 'cancelled']);
const settings = { flushAfterMs: 1000, flushAfterEvents: 256, coalesce: true };

const tracer = () => api.trace.getTracer(SCOPE, VERSION);

/** @param {any} v @returns {any} */
function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return Object.fromEntries(Object.keys(v).sort().filter((k) => k !== 'stream' && k !== 'stream_options')
      .map((k) => [k, canonical(v[k])]));
  }
  return typeof v === 'function' ? undefined : v;
}

/** 16 hex chars of SHA-256 over the canonical request, so retries of one request group together. */
function fingerprint(apiName, params) {
  return createHash('sha256').update(JSON.stringify([apiName, canonical(params || {})])).digest('hex').slice(0, 16);
}

class Call {
  /**
   * @param {{api: string, mode: string, helper?: string, params?: any, sdk: {name: string, version: string},
   *   transport: {name: string, version: string}, server?: {address: string, port: number}, parent?: Call}} o
   */
  constructor(o) {
    this.api = o.api;
    this.mode = o.mode;
    this.helper = o.helper;
    const p = o.params || {};
    this.model = typeof p.model === 'string' ? p.model : undefined;
    this.fingerprint = fingerprint(o.api, p);
    this.start = nowMs();
    this.events = 0;
    this.deltas = 0;
    this.bytes = 0;
    this.attempts = 0;
    /** @type {string[]} */
    this.finishReasons = [];
    this.terminalSeen = false;
    this.doneSeen = false;
    this.finished = false;
    this.pollCount = 0;
    this.maxGap = 0;
    this.lastAt = undefined;
    this.headersAt = undefined;
    const attrs = {
      'streamtriage.span': 'call', 'streamtriage.contract': 1, 'streamtriage.api': o.api,
      'streamtriage.call.mode': o.mode, 'gen_ai.operation.name': OPERATION[o.api] || o.api,
      'gen_ai.provider.name': 'openai', 'gen_ai.system': 'openai',
      'streamtriage.request.fingerprint': this.fingerprint,
      'streamtriage.sdk.name': o.sdk.name, 'streamtriage.sdk.version': o.sdk.version,
      'streamtriage.transport.name': o.transport.name, 'streamtriage.transport.version': o.transport.version,
    };
    if (o.helper) attrs['streamtriage.helper'] = o.helper;
    if (this.model) attrs['gen_ai.request.model'] = this.model;
    const maxTokens = p.max_tokens ?? p.max_completion_tokens ?? p.max_output_tokens;
    if (typeof maxTokens === 'number') attrs['gen_ai.request.max_tokens'] = maxTokens;
    if (o.server) Object.assign(attrs, { 'server.address': o.server.address, 'server.port': o.server.port });
    const ctx = o.parent ? api.trace.setSpan(api.context.active(), o.parent.span) : api.context.active();
    const name = `${attrs['gen_ai.operation.name']} ${this.model || o.api}`;
    this.span = tracer().startSpan(name, { kind: api.SpanKind.CLIENT, attributes: attrs, startTime: this.start }, ctx);
    this.ctx = api.trace.setSpan(ctx, this.span);
    /** @type {{type: string, span: any, count: number, bytes: number, first: number, last: number, maxGap: number, timer?: any} | undefined} */
    this.group = undefined;
  }

  /** Response headers arrived (one per attempt that got an answer). */
  onResponse(status) {
    this.headersAt = nowMs();
    this.httpStatus = status;
  }

  /** The SDK yielded a stream event to the app. */
  onEvent(ev) {
    const now = nowMs();
    const facts = readEvent(this.api, ev, this);
    this.record(facts, now);
  }

  /** @param {import('./events.cjs').EventFacts} f @param {number} now */
  record(f, now) {
    const gapFrom = this.lastAt ?? this.headersAt ?? this.start;
    const gap = now - gapFrom;
    if (gap > this.maxGap) this.maxGap = gap;
    const eventGap = now - (this.lastAt ?? this.start);
    const index = this.events;
    if (index === 0) this.ttfe = now - this.start;
    this.events += 1;
    this.lastAt = now;
    this.lastType = f.type;
    if (f.delta) { this.deltas += 1; this.bytes += f.bytes; }
    if (f.terminal) { this.terminalSeen = true; this.terminalEvent = f.type; }
    const g = this.group;
    if (g && settings.coalesce && f.delta && g.type === f.type && now - g.first < settings.flushAfterMs
        && g.count < settings.flushAfterEvents) {
      g.count += 1;
      g.bytes += f.bytes;
      g.last = now;
      if (eventGap > g.maxGap) g.maxGap = eventGap;
      return;
    }
    this.closeGroup();
    const attrs = { 'streamtriage.span': 'event', 'streamtriage.event.type': f.type, 'streamtriage.event.index': index,
      'streamtriage.event.gap_ms': eventGap };
    if (f.finishReason) attrs['streamtriage.finish_reason'] = f.finishReason;
    if (f.status) attrs['streamtriage.status'] = f.status;
    if (f.errorCode) attrs['streamtriage.error.code'] = f.errorCode;
    if (f.terminal) attrs['streamtriage.terminal'] = true;
    if (index === 0) {
      attrs['streamtriage.api'] = this.api;
      attrs['streamtriage.request.fingerprint'] = this.fingerprint;
      if (this.model) attrs['gen_ai.request.model'] = this.model;
    }
    const span = tracer().startSpan(f.type, { kind: api.SpanKind.INTERNAL, attributes: attrs, startTime: now }, this.ctx);
    this.group = { type: f.type, span, count: 1, bytes: f.bytes, first: now, last: now, maxGap: 0 };
    if (index === 0 || !f.delta || !settings.coalesce) {
      this.closeGroup();
    } else {
      const grp = this.group;
      grp.timer = setTimeout(() => safe(() => { if (this.group === grp) this.closeGroup(); }), settings.flushAfterMs);
      grp.timer.unref();
    }
  }

  closeGroup() {
    const g = this.group;
    if (!g) return;
    this.group = undefined;
    if (g.timer) clearTimeout(g.timer);
    g.span.setAttribute('streamtriage.event.count', g.count);
    if (g.bytes) g.span.setAttribute('streamtriage.event.bytes', g.bytes);
    if (g.count > 1) g.span.setAttribute('streamtriage.event.max_gap_ms', g.maxGap);
    g.span.end(g.last);
  }

  /** The body carried `data: [DONE]` (chat); the SDK reads ahead, so it is recorded at the stream's end. */
  onDone() {
    this.doneSeen = true;
  }

  /** The stream's iteration ended: the `[DONE]` the body carried becomes the last event. */
  flushDone() {
    if (!this.doneSeen || this.doneRecorded) return;
    this.doneRecorded = true;
    this.record({ type: '[DONE]', delta: false, bytes: 0, terminal: true }, nowMs());
  }

  /** Pick facts out of a whole (non-streamed) object: a completion, a response, a run, a file. */
  absorbObject(v) {
    if (!v || typeof v !== 'object') return;
    if (v.id) this.responseId = v.id;
    if (v.model) this.responseModel = v.model;
    if (v.usage) this.usage = v.usage;
    if (v.thread_id) this.threadId = v.thread_id;
    if (v.vector_store_id) this.vectorStoreId = v.vector_store_id;
    if (v.status) this.status = v.status;
    if (v.incomplete_details && v.incomplete_details.reason) this.incompleteReason = v.incomplete_details.reason;
    const err = v.last_error || v.error;
    if (err && err.code) this.errorCode = String(err.code);
    if (Array.isArray(v.choices)) {
      this.finishReasons = v.choices.map((c) => c.finish_reason || '');
    }
    if (this.api !== 'chat.completions' && v.id) this.objectId = v.id;
  }

  /**
   * End the call span.
   * @param {string} outcome span contract §4.2
   * @param {{error?: any, cancelReason?: string, terminalEvent?: string}} [o]
   */
  finish(outcome, o = {}) {
    if (this.finished) return;
    this.finished = true;
    this.closeGroup();
    const end = nowMs();
    const s = this.span;
    const a = { 'streamtriage.outcome': outcome, 'streamtriage.terminal.seen': this.terminalSeen };
    const terminal = o.terminalEvent || this.terminalEvent;
    if (terminal) a['streamtriage.terminal.event'] = terminal;
    if (this.status) a['streamtriage.status'] = this.status;
    if (this.incompleteReason) a['streamtriage.incomplete_reason'] = this.incompleteReason;
    if (this.responseModel) a['gen_ai.response.model'] = this.responseModel;
    if (this.responseId) a['gen_ai.response.id'] = this.responseId;
    if (this.finishReasons.length) a['gen_ai.response.finish_reasons'] = Array.from(this.finishReasons, (x) => x || '');
    const u = this.usage;
    if (u) {
      const inp = u.prompt_tokens ?? u.input_tokens;
      const out = u.completion_tokens ?? u.output_tokens;
      if (typeof inp === 'number') a['gen_ai.usage.input_tokens'] = inp;
      if (typeof out === 'number') a['gen_ai.usage.output_tokens'] = out;
      const det = u.completion_tokens_details || u.output_tokens_details;
      if (det && typeof det.reasoning_tokens === 'number') a['streamtriage.usage.reasoning_tokens'] = det.reasoning_tokens;
    }
    if (this.mode === 'stream' || this.events) {
      Object.assign(a, { 'streamtriage.event.count': this.events, 'streamtriage.delta.count': this.deltas,
        'streamtriage.delta.bytes': this.bytes });
      if (this.ttfe !== undefined) a['streamtriage.ttfe_ms'] = this.ttfe;
      if (this.events) {
        a['streamtriage.max_gap_ms'] = this.maxGap;
        a['streamtriage.last_event.type'] = this.lastType;
        a['streamtriage.last_event.age_ms'] = end - this.lastAt;
      }
    }
    if (this.httpStatus !== undefined) a['http.response.status_code'] = this.httpStatus;
    if (this.attempts) a['streamtriage.retry.count'] = this.attempts - 1;
    if (this.errorCode) a['streamtriage.error.code'] = this.errorCode;
    if (this.objectId) a['streamtriage.object.id'] = this.objectId;
    if (this.threadId) a['streamtriage.thread.id'] = this.threadId;
    if (this.vectorStoreId) a['streamtriage.vector_store.id'] = this.vectorStoreId;
    if (this.mode === 'poll') a['streamtriage.poll.count'] = this.pollCount;
    if (o.cancelReason) a['streamtriage.cancel.reason'] = o.cancelReason;
    if (o.error !== undefined) Object.assign(a, exceptionAttributes(o.error));
    if (outcome === 'error_event' && !a['error.type'] && this.errorCode) a['error.type'] = this.errorCode;
    s.setAttributes(a);
    const failed = (outcome !== 'completed' && outcome !== 'cancelled') || FAILED_STATUS.has(this.status || '');
    if (failed) s.setStatus({ code: api.SpanStatusCode.ERROR, message: o.error ? String(o.error.message || o.error).slice(0, 512) : undefined });
    s.end(end);
  }

  /** End the call from the error the app received. */
  fail(err) {
    this.finish(outcomeOf(err, this), { error: err, cancelReason: outcomeOf(err, this) === 'cancelled' ? 'abort' : undefined });
  }
}

module.exports = { Call, settings, fingerprint, tracer, SCOPE, VERSION };
