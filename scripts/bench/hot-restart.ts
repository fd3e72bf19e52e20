#!/usr/bin/env node
/**
 * Hot restart of the Envoy stand-in by the real agent, in a full pod, triggered as in a cluster: the kubelet
 * swaps the pod's downward-API labels (a new `version` label each time), the agent regenerates the bootstrap
 * and starts the next epoch. drainDuration and parentShutdownDuration are 1 s; FILE_DEBOUNCE_DURATION is
 * the agent's default (100 ms).
 *
 * (a) Quiet: time from the swap to the new epoch LIVE (Envoy's `/server_info`, polled every 10 ms) and to
 *     the old epoch's process gone (/proc, polled every 10 ms), median over --timed restarts.
 * (b) Under probes: a closed request loop through the stand-in's 15021 listener (GET /healthz/ready on a
 *     new connection each, as the kubelet probes) during --probed restarts: total and failed requests
 *     (connection refused/reset, timeouts, anything but 200), by kind.
 *
 *   npm run bench:hot-restart [-- --timed 5] [--probed 10]
 *
 * The last line is JSON for scripts/bench/run-all.ts.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { epochPid, isRunning, serverInfo, updatePodInfo } from '../../test/proxy/agent-envoy.ts';
import { createBenchLifetime } from './lifetime.ts';
import { type Mesh, probe, startPod, waitForOk } from './pod.ts';
import { median } from './processes.ts';

const { values } = parseArgs({
  options: { timed: { type: 'string', default: '5' }, probed: { type: 'string', default: '10' } },
});
const count = (name: 'timed' | 'probed') => {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`--${name}: ${values[name]} is not an integer ≥ 0`);
  return value;
};
const timedRestarts = count('timed');
const probedRestarts = count('probed');
const annotations =
  'prometheus.io/scrape="true"\nprometheus.io/port="15020"\nprometheus.io/path="/stats/prometheus"\n';

/** Polls every 10 ms until `condition` holds; resolves with `performance.now()` then. */
async function until(description: string, condition: () => Promise<boolean>, timeoutMilliseconds = 60_000) {
  const deadline = performance.now() + timeoutMilliseconds;
  for (;;) {
    if (await condition().catch(() => false)) return performance.now();
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${description}`);
    await delay(10);
  }
}

interface Restart {
  readonly toLive: number;
  readonly toOldGone: number;
}

let epoch = 0;
/** One kubelet-style label swap, timed until the new epoch is LIVE and the old epoch's process is gone. */
async function hotRestart(mesh: Mesh): Promise<Restart> {
  const oldPid = await epochPid(mesh.agent, epoch);
  const next = epoch + 1;
  const changedAt = performance.now();
  await updatePodInfo(mesh.root, { labels: `app="productpage"\nversion="v${next + 1}"\n`, annotations });
  const liveAt = await until(`epoch ${next} LIVE`, async () => {
    const info = await serverInfo(mesh.agent.ports.proxyAdmin);
    return info.state === 'LIVE' && info.epoch === next;
  });
  const goneAt = await until(`epoch ${epoch} (pid ${oldPid}) gone`, async () => !(await isRunning(oldPid)));
  epoch = next;
  return { toLive: liveAt - changedAt, toOldGone: goneAt - changedAt };
}

const lifetime = createBenchLifetime();
try {
  const mesh = await startPod(lifetime);
  await waitForOk(mesh.readinessUrl, { isAlive: () => !mesh.agent.hasExited() });

  const quiet: Restart[] = [];
  for (let index = 0; index < timedRestarts; index++) quiet.push(await hotRestart(mesh));

  let probing = true;
  const outcomes: Record<string, number> = {};
  let total = 0;
  const loop = (async () => {
    while (probing) {
      const answer = await probe(mesh.readinessUrl, 5_000);
      total++;
      const kind = answer.status === 0 ? (answer.error ?? 'no answer') : String(answer.status);
      outcomes[kind] = (outcomes[kind] ?? 0) + 1;
    }
  })();
  const loaded: Restart[] = [];
  const loopStarted = performance.now();
  for (let index = 0; index < probedRestarts; index++) loaded.push(await hotRestart(mesh));
  probing = false;
  await loop;
  const loopSeconds = (performance.now() - loopStarted) / 1000;
  const failed = total - (outcomes['200'] ?? 0);

  const summary = (restarts: readonly Restart[]) => ({
    restarts: restarts.length,
    toLiveMedianMilliseconds: Math.round(median(restarts.map((restart) => restart.toLive))),
    toOldGoneMedianMilliseconds: Math.round(median(restarts.map((restart) => restart.toOldGone))),
    toLiveMaxMilliseconds: Math.round(Math.max(...restarts.map((restart) => restart.toLive))),
  });
  const quietSummary = summary(quiet);
  const loadedSummary = summary(loaded);
  console.log(
    'hot restart (kubelet-style label swap; drainDuration 1s, parentShutdownDuration 1s, debounce 100ms)',
  );
  console.log(
    `  quiet, median of ${quiet.length}: swap → new epoch LIVE ${quietSummary.toLiveMedianMilliseconds} ms, → old epoch gone ${quietSummary.toOldGoneMedianMilliseconds} ms`,
  );
  console.log(
    `  under probes, median of ${loaded.length}: swap → new epoch LIVE ${loadedSummary.toLiveMedianMilliseconds} ms, → old epoch gone ${loadedSummary.toOldGoneMedianMilliseconds} ms`,
  );
  console.log(
    `  GET /healthz/ready through 15021, new connection each, during ${loaded.length} hot restarts: ${total} requests (${(total / loopSeconds).toFixed(0)}/s), ${failed} failed (${((failed / Math.max(total, 1)) * 100).toFixed(3)} %): ${JSON.stringify(outcomes)}`,
  );
  console.log(
    JSON.stringify({
      drainDuration: '1s',
      parentShutdownDuration: '1s',
      quiet: quietSummary,
      underProbes: loadedSummary,
      requests: total,
      failed,
      failureRatio: total === 0 ? 0 : failed / total,
      outcomes,
    }),
  );
} finally {
  await lifetime.end();
}
