'use strict';
/**
 * How an exception the app saw maps to a span-contract outcome, and how its class is written.
 *
 * Node has no module-qualified class names, so names are written as an app would import them:
 * `openai.APIConnectionError` for the SDK's own classes, `undici.SocketError` for errors whose
 * `code` is undici's (`UND_ERR_*`), and JavaScript's own classes bare (`TypeError`, `Error`).
 * Node keeps the transport facts in `code` (`ECONNRESET`, `ERR_STREAM_PREMATURE_CLOSE`,
 * `UND_ERR_SOCKET`), so the chain's codes are recorded beside the classes.
 */

/** @type {Set<Function>} the `OpenAIError` base class of every patched openai build */
const openaiBases = new Set();

const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT']);
const TRANSPORT_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ECONNABORTED', 'ENOTFOUND', 'EAI_AGAIN',
  'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ERR_STREAM_PREMATURE_CLOSE']);

/** @param {Function} base */
function registerOpenAIErrorBase(base) {
  if (typeof base === 'function') openaiBases.add(base);
}

/** @param {unknown} err */
function isOpenAIError(err) {
  for (const base of openaiBases) if (err instanceof base) return true;
  return false;
}

/**
 * The error and its causes, outermost first (at most 8, cycles cut).
 * @param {any} err
 * @returns {any[]}
 */
function chainOf(err) {
  const out = [];
  const seen = new Set();
  for (let e = err; e != null && out.length < 8 && !seen.has(e); e = e.cause) {
    seen.add(e);
    out.push(e);
  }
  return out;
}

/** @param {any} e */
function className(e) {
  if (e == null || typeof e !== 'object') return typeof e;
  const name = (e.constructor && e.constructor.name) || e.name || 'Error';
  if (isOpenAIError(e)) return `openai.${name}`;
  if (typeof e.code === 'string' && e.code.startsWith('UND_ERR')) return `undici.${name}`;
  if (name === 'FetchError') return 'node-fetch.FetchError';
  return name;
}

/** @param {any} e */
const codeOf = (e) => (e && (typeof e.code === 'string' || typeof e.code === 'number') ? String(e.code) : '');

/** @param {any} e */
function isAbort(e) {
  const name = e && ((e.constructor && e.constructor.name) || e.name);
  return name === 'APIUserAbortError' || (e && e.name === 'AbortError');
}

/**
 * The outcome (span contract §4.2) of a call that ended with `err`.
 * @param {any} err
 * @param {{events: number}} facts stream events received before the error
 * @returns {string}
 */
function outcomeOf(err, facts) {
  const chain = chainOf(err);
  if (chain.some(isAbort)) return 'cancelled';
  for (const e of chain) {
    const name = e && e.constructor && e.constructor.name;
    if (name === 'APIConnectionTimeoutError' || TIMEOUT_CODES.has(codeOf(e))) return 'timeout';
  }
  for (const e of chain) {
    const name = e && e.constructor && e.constructor.name;
    if (TRANSPORT_CODES.has(codeOf(e))) return 'transport_error';
    if (name === 'APIConnectionError') return 'transport_error';
    if (e instanceof TypeError && (e.message === 'terminated' || e.message === 'fetch failed')) return 'transport_error';
  }
  if (isOpenAIError(err) && err.constructor && err.constructor.name !== 'OpenAIError' && 'status' in err) {
    // APIError: with an HTTP status it came from the response; without one, from an in-band error event.
    if (typeof err.status === 'number' && facts.events === 0) return 'http_error';
    if (err.status === undefined) return 'error_event';
  }
  return 'error';
}

/**
 * Span attributes describing `err` (span contract §1: error.type, streamtriage.exception.*).
 * @param {any} err
 * @returns {Record<string, any>}
 */
function exceptionAttributes(err) {
  const chain = chainOf(err);
  const attrs = {
    'error.type': className(err),
    'streamtriage.exception.type': className(err),
    'streamtriage.exception.message': String((err && err.message) || err).slice(0, 512),
    'streamtriage.exception.chain': chain.map(className),
    'streamtriage.exception.codes': chain.map(codeOf),
  };
  const api = chain.find((e) => e && typeof e.status === 'number');
  if (api) attrs['http.response.status_code'] = api.status;
  const inner = err && (err.error || err);
  if (inner && typeof inner === 'object') {
    if (inner.code != null && isOpenAIError(err)) attrs['streamtriage.error.code'] = String(inner.code);
    if (typeof inner.type === 'string') attrs['streamtriage.error.type'] = inner.type;
  }
  return attrs;
}

module.exports = { registerOpenAIErrorBase, isOpenAIError, outcomeOf, exceptionAttributes, className, chainOf, isAbort };
