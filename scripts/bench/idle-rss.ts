#!/usr/bin/env node
/**
 * The agent's resident memory after start-up, in a full pod: once ready (200 through the Envoy stand-in's
 * 15021 listener) it idles a few seconds, then VmRSS of the agent's process alone (not Envoy) is read from
 * /proc. Target ≤ 50 MB (Istio's Go agent idles around 50 MB, istio#38000). The baseline is an idle
 * `node -e "setInterval(()=>{},1e9)"` measured alongside: what the runtime itself costs.
 *
 * Measured twice: the checkout's TypeScript sources run by type stripping (agent/main.ts), and the built
 * output (dist/agent/main.js, built first with `npm run build` unless --no-build).
 *
 *   npm run bench:idle-rss [-- --idle-seconds 5] [--no-build]
 *
 * The last line is JSON for scripts/bench/run-all.ts.
 */
import { spawn } from 'node:child_process';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { repositoryRoot } from '../../test/helpers/paths.ts';
import { createBenchLifetime } from './lifetime.ts';
import { startPod, waitForOk } from './pod.ts';
import { residentBytes } from './processes.ts';

const { values } = parseArgs({
  options: {
    'idle-seconds': { type: 'string', default: '5' },
    'no-build': { type: 'boolean', default: false },
  },
});
const idleMilliseconds = Number(values['idle-seconds']) * 1000;
if (!(idleMilliseconds >= 0))
  throw new Error(`--idle-seconds: ${values['idle-seconds']} is not a number ≥ 0`);
const distEntryPoint = path.join(repositoryRoot, 'dist/agent/main.js');

/** VmRSS of an idle Node process after the same idle time. */
async function idleNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(()=>{},1e9)'], { stdio: 'ignore' });
  try {
    await delay(idleMilliseconds);
    return await residentBytes(child.pid ?? 0);
  } finally {
    child.kill();
  }
}

/** The agent's VmRSS after start-up and `idleMilliseconds` of idling, with the idle Node baseline taken meanwhile. */
async function agentIdleRss(
  entryPoint?: string,
  nodeOptions?: string,
): Promise<{ agent: number; baseline: number }> {
  const lifetime = createBenchLifetime();
  try {
    const pod = await startPod(lifetime, {
      ...(entryPoint === undefined ? {} : { entryPoint }),
      ...(nodeOptions === undefined ? {} : { environment: { NODE_OPTIONS: nodeOptions } }),
    });
    await waitForOk(pod.readinessUrl, { isAlive: () => !pod.agent.hasExited() });
    const baseline = await idleNodeRss();
    return { agent: await residentBytes(pod.agent.pid), baseline };
  } finally {
    await lifetime.end();
  }
}

let built = true;
if (!values['no-build']) {
  const build = await execa('npm', ['run', 'build'], { cwd: repositoryRoot, reject: false, all: true });
  if (build.exitCode !== 0) {
    built = false;
    console.error(`npm run build failed; the built output is not measured:\n${build.all}`);
  }
}
built &&= await access(distEntryPoint).then(
  () => true,
  () => false,
);

const megabytes = (bytes: number) => Number((bytes / 1024 / 1024).toFixed(1));
const rows: Array<{ entryPoint: string; agentMegabytes: number; baselineMegabytes: number; ratio: number }> =
  [];
// The container image runs the built output with the V8 setting in the Dockerfile's NODE_OPTIONS.
const imageNodeOptions = '--max-semi-space-size=2';
const variants: Array<{ entryPoint?: string; nodeOptions?: string }> = built
  ? [{}, { entryPoint: distEntryPoint }, { entryPoint: distEntryPoint, nodeOptions: imageNodeOptions }]
  : [{}];
for (const { entryPoint, nodeOptions } of variants) {
  const { agent, baseline } = await agentIdleRss(entryPoint, nodeOptions);
  rows.push({
    entryPoint: `${entryPoint === undefined ? 'agent/main.ts' : path.relative(repositoryRoot, entryPoint)}${nodeOptions ? ` ${nodeOptions}` : ''}`,
    agentMegabytes: megabytes(agent),
    baselineMegabytes: megabytes(baseline),
    ratio: Number((agent / baseline).toFixed(2)),
  });
}
console.log(
  `agent VmRSS after start-up + ${idleMilliseconds / 1000} s idle (agent process only, not Envoy), node ${process.version}`,
);
for (const row of rows) {
  console.log(
    `  ${row.entryPoint.padEnd(48)} ${row.agentMegabytes.toFixed(1).padStart(6)} MiB   idle node ${row.baselineMegabytes.toFixed(1)} MiB   ratio ${row.ratio.toFixed(2)}   (target ≤ 50 MiB: ${row.agentMegabytes <= 50 ? 'met' : 'missed'})`,
  );
}
console.log(JSON.stringify({ idleSeconds: idleMilliseconds / 1000, targetMegabytes: 50, rows }));
