// `node --import streamtriage/register app.mjs`: instrument from the OTEL_* environment before the
// app's own imports run, so `import OpenAI from 'openai'` is patched from its first call.
import { instrument } from './index.js';

const handle = instrument({});
await handle.ready;
process.once('beforeExit', () => { handle.shutdown(); });
