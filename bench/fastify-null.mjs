// The HTTP baseline: a fastify app whose POST /logs route reads the body and does nothing else.
// fastify is the one the HTTP front-end depends on, resolved from packages/frontend-http.
// Prints {"listening":PORT} on stdout once bound; exits 0 on SIGTERM.
import { createRequire } from 'node:module';
import { writeSync } from 'node:fs';

const require = createRequire(process.argv[2]);
const fastify = require('fastify');
const app = fastify({ logger: false });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 5 * 1024 * 1024 }, (_req, body, done) => done(null, body));
app.post('/logs', async (_request, reply) => reply.code(200).send());
await app.listen({ host: '127.0.0.1', port: 0 });
writeSync(1, `${JSON.stringify({ listening: app.server.address().port, fastify: app.version })}\n`);
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
