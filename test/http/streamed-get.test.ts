import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import test from 'ava';
import { StreamedGet } from '../../agent/http/streamed-get.ts';

/** A raw TCP server that reads the request head, then writes `pieces` one by one (split as given). */
async function rawServer(
  t: { teardown(fn: () => void): void },
  answer: (socket: Socket, request: string) => Promise<void> | void,
): Promise<number> {
  const server = createServer((socket) => {
    let request = '';
    socket.on('data', (chunk: Buffer) => {
      request += chunk.toString('latin1');
      if (request.includes('\r\n\r\n')) void answer(socket, request);
    });
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  return (server.address() as AddressInfo).port;
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

async function readAll(get: StreamedGet): Promise<string> {
  let body = '';
  // Copy: the bytes are a view of a buffer reused after the call.
  await get.read((bytes) => {
    body += bytes.toString('utf8');
    return true;
  });
  return body;
}

test('a chunked body split anywhere across reads is decoded, trailers included', async (t) => {
  const wire =
    'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n';
  let seenRequest = '';
  const port = await rawServer(t, async (socket, request) => {
    seenRequest = request;
    for (const character of wire) {
      socket.write(character);
      await tick();
    }
    socket.end();
  });
  const get = await StreamedGet.open({
    host: '127.0.0.1',
    port,
    path: '/stats?x=1',
    headers: { accept: 'text/plain' },
  });
  t.is(get.status, 200);
  t.is(get.headers['content-type'], 'text/plain');
  t.is(await readAll(get), 'hello world');
  t.true(get.complete);
  t.regex(
    seenRequest,
    /^GET \/stats\?x=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nConnection: close\r\naccept: text\/plain\r\n\r\n$/,
  );
});

test('a Content-Length body ends at its length; a body arriving with the head is not lost', async (t) => {
  const port = await rawServer(t, (socket) => {
    socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusyEXTRA');
  });
  const get = await StreamedGet.open({ host: '127.0.0.1', port, path: '/' });
  t.is(get.status, 503);
  t.is(await readAll(get), 'busy');
});

test('without a length the body runs to the end of the connection', async (t) => {
  const port = await rawServer(t, async (socket) => {
    socket.write('HTTP/1.0 200 OK\r\n\r\nfirst ');
    await tick();
    socket.end('second');
  });
  const get = await StreamedGet.open({ host: '127.0.0.1', port, path: '/' });
  t.is(await readAll(get), 'first second');
});

test('a consumer that pauses gets the rest after resume, in order', async (t) => {
  const payload = 'x'.repeat(300_000);
  const port = await rawServer(t, (socket) => {
    socket.end(`HTTP/1.1 200 OK\r\nContent-Length: ${payload.length}\r\n\r\n${payload}`);
  });
  const get = await StreamedGet.open({ host: '127.0.0.1', port, path: '/' });
  let received = 0;
  let pauses = 0;
  await get.read((bytes) => {
    received += bytes.length;
    pauses++;
    setTimeout(() => get.resume(), 1);
    return false;
  });
  t.is(received, payload.length);
  t.true(pauses > 1);
});

test('a connection cut before the end of the body, an abort and a non-HTTP answer are errors', async (t) => {
  const cut = await rawServer(t, (socket) => {
    socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort');
  });
  const get = await StreamedGet.open({ host: '127.0.0.1', port: cut, path: '/' });
  await t.throwsAsync(readAll(get), { message: 'connection closed before the end of the body' });

  const silent = await rawServer(t, () => {});
  const controller = new AbortController();
  const pending = StreamedGet.open({ host: '127.0.0.1', port: silent, path: '/', signal: controller.signal });
  controller.abort(new Error('deadline'));
  await t.throwsAsync(pending, { message: /aborted/ });

  const garbage = await rawServer(t, (socket) => void socket.end('SSH-2.0-OpenSSH\r\n\r\n'));
  await t.throwsAsync(StreamedGet.open({ host: '127.0.0.1', port: garbage, path: '/' }), {
    message: /not an HTTP response/,
  });

  const closedPort = await rawServer(t, (socket) => void socket.destroy());
  await t.throwsAsync(StreamedGet.open({ host: '127.0.0.1', port: closedPort, path: '/' }), {
    message: 'connection closed before the response',
  });
});
