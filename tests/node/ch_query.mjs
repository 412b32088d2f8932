// Runs a list of requests through @clickhouse/client against a ClickHouse HTTP endpoint and prints
// one JSON result per request, so a Python test can check what the official Node client sees.
// Usage: node ch_query.mjs <url> [user] [password] < requests.json
//   requests.json: [{"kind": "query", "query": "...", "format": "JSONEachRow", "params": {...}},
//                   {"kind": "command", "query": "..."}, {"kind": "ping"}]
import { createClient } from '@clickhouse/client'

const [url, username, password] = process.argv.slice(2)
const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const requests = JSON.parse(Buffer.concat(chunks).toString('utf8'))

const client = createClient({
  url,
  username: username || 'default',
  password: password || '',
  request_timeout: 20000,
})

const results = []
for (const req of requests) {
  try {
    if (req.kind === 'ping') {
      const res = await client.ping()
      results.push({ ok: res.success === true })
    } else if (req.kind === 'command') {
      await client.command({ query: req.query, query_params: req.params })
      results.push({ ok: true })
    } else {
      const rs = await client.query({ query: req.query, format: req.format || 'JSONEachRow', query_params: req.params })
      const data = await rs.json()
      results.push({ ok: true, data, query_id: rs.query_id })
    }
  } catch (err) {
    results.push({ ok: false, code: err.code ?? null, type: err.type ?? null, message: String(err.message) })
  }
}
await client.close()
process.stdout.write(JSON.stringify(results))
