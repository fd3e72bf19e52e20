/**
 * A do-nothing HTTP server (200, empty body) in its own process: the latency floor of this machine, which
 * the readiness benchmark measures alongside the status server. Prints `{"port"}` when listening.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const server = createServer((_request, response) => response.writeHead(200).end());
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
