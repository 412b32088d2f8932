'use strict';
/**
 * Watching a stream without changing it: the SDK's event iterator (what the app receives, as
 * is) and, for Chat Completions, the response body's bytes (the SDK swallows `data: [DONE]`, the
 * protocol's terminal marker, so the hook looks for it in the bytes the SDK reads).
 */
const { safe, dropped } = require('./safety.cjs');
const { outcomeOf } = require('./errors.cjs');

const DONE = Buffer.from('[DONE]');
const watchedBodies = new WeakSet();

/**
 * Wrap the async iterator of a response body so each chunk is scanned for `[DONE]`.
 * Sets an own `Symbol.asyncIterator` on the body object only; the SDK reads the same chunks.
 * @param {any} body a WHATWG ReadableStream (undici) or a Node Readable (node-fetch)
 * @param {() => void} onDone
 */
function watchBodyForDone(body, onDone) {
  if (!body || typeof body !== 'object' || watchedBodies.has(body)) return;
  const orig = body[Symbol.asyncIterator];
  if (typeof orig !== 'function') return;
  watchedBodies.add(body);
  let tail = Buffer.alloc(0);
  let seen = false;
  const scan = (chunk) => {
    if (seen || !chunk || typeof chunk.byteLength !== 'number') return;
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const hay = tail.length ? Buffer.concat([tail, buf]) : buf;
    if (hay.indexOf(DONE) !== -1) {
      seen = true;
      onDone();
      return;
    }
    tail = Buffer.from(hay.subarray(Math.max(0, hay.length - DONE.length + 1)));
  };
  const onChunk = (r) => {
    if (!r.done && !seen) {
      try { scan(r.value); } catch (e) { dropped(e); }
    }
    return r;
  };
  Object.defineProperty(body, Symbol.asyncIterator, {
    configurable: true,
    writable: true,
    value: function streamtriageBodyIterator(...args) {
      const it = orig.apply(this, args);
      return {
        next(...a) { return it.next(...a).then(onChunk); },
        return(v) { return typeof it.return === 'function' ? it.return(v) : Promise.resolve({ done: true, value: v }); },
        throw(e) { return typeof it.throw === 'function' ? it.throw(e) : Promise.reject(e); },
        [Symbol.asyncIterator]() { return this; },
      };
    },
  });
}

/**
 * The iterator the app gets for a `Stream`: the SDK's own iterator, each step reported to `call`.
 * @param {AsyncIterator<any>} it
 * @param {import('./calls.cjs').Call} call
 * @param {AbortController | undefined} controller
 * @param {(outcome: string, o: object) => void} end how the stream part of the call ends
 */
function observeIterator(it, call, controller, end) {
  let over = false;
  const stop = (outcome, o) => { if (!over) { over = true; end(outcome, o); } };
  // One pair of handlers per stream, not per event: the per-chunk cost is one `then`.
  const onStep = (r) => {
    try {
      if (!r.done) {
        call.onEvent(r.value);
      } else {
        call.flushDone();
        if (controller && controller.signal && controller.signal.aborted) stop('cancelled', { cancelReason: 'abort' });
        else if (call.errorEventSeen && !call.terminalSeen) stop('error_event', {});
        else stop(call.terminalSeen ? 'completed' : 'no_terminal', {});
      }
    } catch (e) {
      dropped(e);
    }
    return r;
  };
  const onError = (err) => {
    safe(() => {
      call.flushDone();
      const outcome = outcomeOf(err, call);
      stop(outcome, { error: err, cancelReason: outcome === 'cancelled' ? 'abort' : undefined });
    });
    throw err;
  };
  return {
    next(...a) { return it.next(...a).then(onStep, onError); },
    return(v) {
      safe(() => stop('cancelled', { cancelReason: 'break' }));
      return typeof it.return === 'function' ? it.return(v) : Promise.resolve({ done: true, value: v });
    },
    throw(e) { return typeof it.throw === 'function' ? it.throw(e) : Promise.reject(e); },
    [Symbol.asyncIterator]() { return this; },
  };
}

module.exports = { watchBodyForDone, observeIterator };
