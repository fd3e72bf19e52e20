#!/usr/bin/env node
// A standalone test istiod for demos: `node test/istiod/main.ts [--port N] [--root-cert-file F] [--token-file F]`.
// Prints one JSON line {"port","address","rootCertFile"} once it listens; stops on SIGTERM/SIGINT.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { TestIstiod } from './test-istiod.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'root-cert-file': { type: 'string' },
    'token-file': { type: 'string' },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`--port: ${JSON.stringify(values.port)} is not a port number\n`);
  process.exit(2);
}
const rootCertFile =
  values['root-cert-file'] ?? path.join(await mkdtemp(path.join(tmpdir(), 'test-istiod-')), 'root-cert.pem');
const istiod = await TestIstiod.start({
  port,
  rootCertFile,
  ...(values['token-file'] !== undefined ? { tokenFile: values['token-file'] } : {}),
});
istiod.on('certificate-request', (request) =>
  process.stderr.write(
    `CreateCertificate ${request.csrUris.join(',')} ttl=${request.validitySeconds}s cluster=${request.clusterId ?? ''} → ${request.outcome}\n`,
  ),
);
process.stdout.write(`${JSON.stringify({ port: istiod.port, address: istiod.address, rootCertFile })}\n`);
const keepAlive = setInterval(() => {}, 1 << 30);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    clearInterval(keepAlive);
    void istiod.stop();
  });
}
