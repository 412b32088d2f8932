'use strict';
/**
 * The hook as an `@opentelemetry/instrumentation` Instrumentation, for apps that register
 * instrumentations (`registerInstrumentations({instrumentations: [new StreamTriageInstrumentation()]})`).
 * It patches `openai` when the app loads it: require() always, import when the app runs with an
 * import-in-the-middle loader (as `@opentelemetry/auto-instrumentations-node/register` sets up).
 */
const { InstrumentationBase, InstrumentationNodeModuleDefinition } = require('@opentelemetry/instrumentation');
const { instrumentOpenAI, disable } = require('./patches.cjs');
const { SCOPE, VERSION } = require('./calls.cjs');

const SUPPORTED = ['>=4.0.0 <7'];

class StreamTriageInstrumentation extends InstrumentationBase {
  constructor(config = {}) {
    super(SCOPE, VERSION, config);
  }

  init() {
    const patch = (exports) => { instrumentOpenAI(exports); return exports; };
    return [new InstrumentationNodeModuleDefinition('openai', SUPPORTED, patch, (exports) => exports)];
  }

  enable() {
    super.enable();
  }

  disable() {
    super.disable();
    disable();
  }
}

module.exports = { StreamTriageInstrumentation, SUPPORTED };
