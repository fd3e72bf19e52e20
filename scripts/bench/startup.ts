#!/usr/bin/env node
/**
 * Start-up of the real agent in a full pod (test istiod with CA and ADS, sample app, the Envoy stand-in):
 * from spawning `pilot-agent proxy sidecar` to Envoy launched (the agent's "Envoy epoch 0 running as pid"
 * line) and to ready (200 from `/healthz/ready` through the stand-in's 15021 listener, polled every 10 ms on
 * new connections), median of N runs, next to `node -e 0` (the runtime's floor) measured interleaved in the
 * same run.
 *
 *   npm run bench:startup [-- --runs 5] [--entry-point dist/agent/main.js]
 *
 * The last line is JSON for scripts/bench/run-all.ts.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repositoryRoot } from '../../test/helpers/paths.ts';
import { createBenchLifetime } from './lifetime.ts';
import { startPod, waitForOk } from './pod.ts';
import { median } from './processes.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, 'entry-point': { type: 'string' } },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: ${values.runs} is not a positive integer`);
const entryPoint =
  values['entry-point'] === undefined ? undefined : path.resolve(repositoryRoot, values['entry-point']);

/** Milliseconds from spawning `node -e 0` to its exit. */
function nodeFloor(): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
    child.on('error', reject);
    child.on('exit', () => resolve(performance.now() - started));
  });
}

interface Run {
  readonly envoyLaunched: number;
  readonly ready: number;
}

async function agentRun(): Promise<Run> {
  const lifetime = createBenchLifetime();
  try {
    const pod = await startPod(lifetime, entryPoint === undefined ? {} : { entryPoint });
    const { agent } = pod;
    let envoyLaunchedAt: number | undefined;
    let seen = '';
    agent.subprocess.all?.on('data', (chunk: Buffer) => {
      if (envoyLaunchedAt !== undefined) return;
      seen += chunk.toString();
      if (/Envoy epoch 0 running as pid \d+/.test(seen)) envoyLaunchedAt = performance.now();
    });
    const readyAt = await waitForOk(pod.readinessUrl, { isAlive: () => !agent.hasExited() });
    if (envoyLaunchedAt === undefined)
      throw new Error(`ready before the Envoy launch line:\n${agent.output()}`);
    return { envoyLaunched: envoyLaunchedAt - agent.spawnedAt, ready: readyAt - agent.spawnedAt };
  } finally {
    await lifetime.end();
  }
}

const floors: number[] = [];
const agentRuns: Run[] = [];
await nodeFloor(); // warm the file cache for the binary
// Interleaved, so that load drifting during the run weighs on both alike.
for (let run = 0; run < runs; run++) {
  floors.push(await nodeFloor());
  agentRuns.push(await agentRun());
}
const floor = median(floors);
const launched = median(agentRuns.map((run) => run.envoyLaunched));
const ready = median(agentRuns.map((run) => run.ready));
const label =
  entryPoint === undefined ? 'agent/main.ts (type stripping)' : path.relative(repositoryRoot, entryPoint);
console.log(
  `start-up of pilot-agent proxy sidecar (${label}), median of ${runs} runs, node ${process.version}`,
);
console.log(`  node -e 0 (floor)                     ${floor.toFixed(0).padStart(6)} ms   1.0×`);
console.log(
  `  spawn → Envoy launched (epoch 0 pid)  ${launched.toFixed(0).padStart(6)} ms ${`${(launched / floor).toFixed(1)}×`.padStart(6)}`,
);
console.log(
  `  spawn → ready (200 through 15021)     ${ready.toFixed(0).padStart(6)} ms ${`${(ready / floor).toFixed(1)}×`.padStart(6)}`,
);
console.log(
  JSON.stringify({
    runs,
    entryPoint: label,
    floorMilliseconds: Number(floor.toFixed(1)),
    envoyLaunchedMilliseconds: Number(launched.toFixed(1)),
    readyMilliseconds: Number(ready.toFixed(1)),
    samples: {
      floor: floors.map(Math.round),
      agent: agentRuns.map((run) => [Math.round(run.envoyLaunched), Math.round(run.ready)]),
    },
  }),
);
