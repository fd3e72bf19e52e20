/**
 * Runs inside a fresh network namespace (`unshare --net`), where the fixed ports `pilot-agent request`
 * talks to (15000, 15020) are free whatever else runs on the machine: starts fake admin servers there, runs
 * the real CLI once per invocation given as JSON in argv[2], and prints what happened as one JSON line.
 */
import { createServer } from 'node:http';
import { execa } from 'execa';
import { agentEntryPoint } from '../helpers/paths.ts';

await execa('ip', ['link', 'set', 'lo', 'up']);
const seen: string[] = [];
for (const port of [15000, 15020]) {
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      seen.push(`${port} ${request.method} ${request.url}${body ? ` ${body}` : ''}`);
      if (request.url === '/broken') response.writeHead(500).end('admin failed');
      else if (request.url === '/missing') response.writeHead(404).end('invalid path: /missing');
      else response.writeHead(200).end(`answer from ${port} to ${request.method} ${request.url}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
}
const invocations = JSON.parse(process.argv[2] ?? '[]') as string[][];
const results = [];
for (const args of invocations) {
  const result = await execa(process.execPath, [agentEntryPoint, ...args], {
    reject: false,
    env: {},
    extendEnv: false,
  });
  results.push({ args, exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr });
}
process.stdout.write(`${JSON.stringify({ results, seen })}\n`);
process.exit(0);
