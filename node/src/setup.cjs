'use strict';
/**
 * Where spans go: the app's registered tracer provider if it has one, else a batching OTLP/HTTP
 * exporter set up here (honouring OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS and
 * OTEL_SERVICE_NAME, as the Python hook does).
 */
const api = require('@opentelemetry/api');

/** @param {string | undefined} s `k=v,k2=v2` */
function parseHeaders(s) {
  const out = {};
  for (const part of (s || '').split(',')) {
    const i = part.indexOf('=');
    if (i > 0) out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

function hasProvider() {
  const p = api.trace.getTracerProvider();
  const d = p && typeof p.getDelegate === 'function' ? p.getDelegate() : p;
  return !!d && d.constructor && d.constructor.name !== 'NoopTracerProvider';
}

/**
 * @param {{endpoint?: string, serviceName?: string, headers?: Record<string, string>}} o
 * @returns {{forceFlush: () => Promise<void>, shutdown: () => Promise<void>}}
 */
function setupTracing(o) {
  if (hasProvider()) {
    const p = api.trace.getTracerProvider();
    const d = typeof p.getDelegate === 'function' ? p.getDelegate() : p;
    return {
      forceFlush: async () => { if (typeof d.forceFlush === 'function') await d.forceFlush(); },
      shutdown: async () => { /* the app owns its provider */ },
    };
  }
  const { NodeTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-node');
  const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
  const { resourceFromAttributes } = require('@opentelemetry/resources');
  const base = (o.endpoint || process.env.OTEL_EXPORTER_OTLP_ENDPOINT || 'http://127.0.0.1:4318').replace(/\/+$/, '');
  const url = base.endsWith('/v1/traces') ? base : `${base}/v1/traces`;
  const headers = { ...parseHeaders(process.env.OTEL_EXPORTER_OTLP_HEADERS), ...(o.headers || {}) };
  const serviceName = o.serviceName || process.env.OTEL_SERVICE_NAME || 'unknown_service:node';
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url, headers }), { scheduledDelayMillis: 500 })],
  });
  provider.register();
  return {
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

module.exports = { setupTracing };
