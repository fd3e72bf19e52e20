/**
 * The XDS proxy alone in its own process, so a test can watch its memory (`/proc/<pid>/status`). Argument:
 * JSON `{ "environment": {…} }`; the working directory is the pod root. Prints `ready` once listening and
 * stops on SIGTERM. On SIGUSR2 it collects garbage (when run with --expose-gc) and prints
 * `memory {"rss":…,"arrayBuffers":…,…}`: what it still holds, as opposed to what V8 has not collected yet.
 */
import { Registry } from 'prom-client';
import { buildAgentConfig, defaultProxyFlags } from '../../agent/config/agent-config.ts';
import { readConfigFile } from '../../agent/config/load.ts';
import { createLogging } from '../../agent/log.ts';
import { XdsProxy } from '../../agent/xds/xds-proxy.ts';

const { environment } = JSON.parse(process.argv[2] ?? '{}') as { environment: Record<string, string> };
const config = buildAgentConfig({
  environment,
  flags: defaultProxyFlags,
  workingDirectory: process.cwd(),
  readFile: readConfigFile,
});
const logging = createLogging({
  levels: { default: 'info' },
  asJson: false,
  destination: { write: (line: string) => void process.stderr.write(line) },
});
const proxy = new XdsProxy({ config, logging, registry: new Registry() });
await proxy.start();
process.stdout.write('ready\n');
process.on('SIGUSR2', async () => {
  // V8 frees array buffers while sweeping, possibly in the background: a second collection finishes the
  // first one's sweep.
  const collect = (globalThis as { gc?: () => void }).gc;
  collect?.();
  await new Promise((resolve) => setImmediate(resolve));
  collect?.();
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  process.stdout.write(`memory ${JSON.stringify({ rss, heapUsed, external, arrayBuffers })}\n`);
});
process.once('SIGTERM', () => {
  void proxy.stop().then(() => process.exit(0));
});
