'use strict';
/**
 * The hook runs inside the app: nothing it does may throw into the app's code.
 * Every recording step goes through {@link safe}; a failure is reported once on stderr when
 * STREAMTRIAGE_DEBUG is set, and otherwise dropped.
 */
let reported = false;

/**
 * Run `fn`, returning its value, or `undefined` if it threw.
 * @template T
 * @param {() => T} fn
 * @returns {T | undefined}
 */
function safe(fn) {
  try {
    return fn();
  } catch (err) {
    dropped(err);
    return undefined;
  }
}

/** A hook error caught by a hot path's own try/catch: dropped (reported once under STREAMTRIAGE_DEBUG). */
function dropped(err) {
  if (!reported && process.env.STREAMTRIAGE_DEBUG) {
    reported = true;
    process.stderr.write(`streamtriage: hook error (ignored): ${err && err.stack}\n`);
  }
}

/** Milliseconds since the epoch with sub-millisecond precision (an OpenTelemetry TimeInput). */
const nowMs = () => performance.timeOrigin + performance.now();

module.exports = { safe, dropped, nowMs };
