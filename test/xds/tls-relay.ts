import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { ExecutionContext } from 'ava';

/** What the first bytes a client sent say about its connection. */
export interface ObservedConnection {
  /** The connection opened with a TLS handshake record carrying a ClientHello. */
  readonly tls: boolean;
  /** The SNI server name, when the ClientHello had one. */
  readonly serverName: string | undefined;
  /** TLS versions offered (supported_versions, else the ClientHello's version), e.g. `TLSv1.3`. */
  readonly offeredVersions: readonly string[];
}

const versionNames: Record<number, string> = {
  769: 'TLSv1',
  770: 'TLSv1.1',
  771: 'TLSv1.2',
  772: 'TLSv1.3',
};

/**
 * A TCP relay in front of a server that reads (without altering) each client's ClientHello, so a test can
 * tell on the wire that the client spoke TLS, which server name it asked for, and which versions it offered.
 */
export async function startTlsObservingRelay(
  t: ExecutionContext,
  targetPort: number,
): Promise<{ port: number; connections: ObservedConnection[] }> {
  const connections: ObservedConnection[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: 'localhost', port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    let head = Buffer.alloc(0);
    let observed = false;
    client.on('data', (chunk: Buffer) => {
      if (observed) return;
      head = Buffer.concat([head, chunk]);
      const connection = parseClientHello(head);
      if (connection) {
        observed = true;
        connections.push(connection);
      }
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the relay has no port');
  return { port: address.port, connections };
}

/** Parses a TLS ClientHello record; undefined while more bytes are needed. */
function parseClientHello(bytes: Buffer): ObservedConnection | undefined {
  if (bytes.length < 5) return undefined;
  if (bytes[0] !== 0x16) return { tls: false, serverName: undefined, offeredVersions: [] };
  const recordLength = bytes.readUInt16BE(3);
  if (bytes.length < 5 + recordLength) return undefined;
  const hello = bytes.subarray(5, 5 + recordLength);
  if (hello[0] !== 0x01) return { tls: false, serverName: undefined, offeredVersions: [] };
  let offset = 4;
  const legacyVersion = hello.readUInt16BE(offset);
  offset += 2 + 32;
  offset += 1 + (hello[offset] ?? 0);
  offset += 2 + hello.readUInt16BE(offset);
  offset += 1 + (hello[offset] ?? 0);
  let serverName: string | undefined;
  let versions: number[] = [legacyVersion];
  const extensionsEnd = offset + 2 + hello.readUInt16BE(offset);
  offset += 2;
  while (offset + 4 <= extensionsEnd) {
    const type = hello.readUInt16BE(offset);
    const length = hello.readUInt16BE(offset + 2);
    const data = hello.subarray(offset + 4, offset + 4 + length);
    if (type === 0x0000 && data.length >= 5 && data[2] === 0) {
      serverName = data.subarray(5, 5 + data.readUInt16BE(3)).toString('latin1');
    } else if (type === 0x002b) {
      versions = [];
      const listEnd = 1 + (data[0] ?? 0);
      for (let index = 1; index + 2 <= listEnd; index += 2) versions.push(data.readUInt16BE(index));
    }
    offset += 4 + length;
  }
  return {
    tls: true,
    serverName,
    // GREASE values (0x?a?a) are not versions.
    offeredVersions: versions
      .filter((version) => (version & 0x0f0f) !== 0x0a0a)
      .map((version) => versionNames[version] ?? `0x${version.toString(16)}`),
  };
}
