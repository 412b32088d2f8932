// ESM entry: the same single copy of the hook as the CommonJS entry (see index.cjs).
import cjs from './index.cjs';

/** @type {typeof import('./index.cjs').instrument} */
export const instrument = cjs.instrument;
/** @type {typeof import('./index.cjs').instrumentOpenAI} */
export const instrumentOpenAI = cjs.instrumentOpenAI;
export const StreamTriageInstrumentation = cjs.StreamTriageInstrumentation;
export const version = cjs.version;
export default cjs;
