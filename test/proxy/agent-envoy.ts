import { readFile } from 'node:fs/promises';
import { samplePodLabels } from '../fixtures/sample-pod.ts';
import { type RunningAgent, startAgent } from '../helpers/agent-process.ts';
import { type ControlPlane, startControlPlane } from '../helpers/control-plane.ts';
import { writeKubeletVolume } from '../helpers/kubelet-volume.ts';
import type { Lifetime } from '../helpers/lifetime.ts';
import { createTemporaryRoot, type TemporaryRoot } from '../helpers/temporary-root.ts';
import { waitFor } from '../helpers/wait-for.ts';

/** Short drains so that a hot-restarted parent leaves within a test's patience. */
export const fastDrainProxyConfig = { drainDuration: '1s', parentShutdownDuration: '1s' };

export interface AgentWithEnvoy {
  readonly root: TemporaryRoot;
  readonly agent: RunningAgent;
  readonly adminPort: number;
  readonly controlPlane: ControlPlane;
}

/**
 * A temporary pod root with downward-API files written as the kubelet does, a test istiod answering ADS,
 * and the real agent running the Envoy stand-in in it (Envoy → the agent's XDS proxy → istiod).
 */
export async function startAgentWithEnvoy(
  t: Lifetime,
  options: {
    environment?: Record<string, string>;
    labels?: string;
    annotations?: string;
    proxyConfig?: Record<string, unknown>;
  } = {},
): Promise<AgentWithEnvoy> {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  await writeKubeletVolume(root.resolve('etc/istio/pod'), {
    labels: options.labels ?? samplePodLabels(),
    annotations: options.annotations ?? '',
  });
  const controlPlane = await startControlPlane(t, root);
  const agent = await startAgent(
    t,
    root,
    { PILOT_CERT_PROVIDER: 'none', FILE_DEBOUNCE_DURATION: '50ms', ...options.environment },
    { proxyConfig: { ...controlPlane.proxyConfig, ...fastDrainProxyConfig, ...options.proxyConfig } },
  );
  return { root, agent, adminPort: agent.ports.proxyAdmin, controlPlane };
}

export interface ServerInfo {
  readonly state: string;
  readonly epoch: number;
  readonly pid?: number;
}

/** Envoy's `/server_info`: the serving epoch and its state. */
export async function serverInfo(adminPort: number): Promise<ServerInfo> {
  const response = await fetch(`http://127.0.0.1:${adminPort}/server_info`);
  const body = (await response.json()) as { state: string; command_line_options: { restart_epoch: number } };
  return { state: body.state, epoch: Number(body.command_line_options.restart_epoch) };
}

export async function waitForLiveEpoch(adminPort: number, epoch: number): Promise<void> {
  await waitFor(`Envoy epoch ${epoch} LIVE`, async () => {
    const info = await serverInfo(adminPort);
    return info.state === 'LIVE' && info.epoch === epoch;
  });
}

/** The pid the agent logged for an epoch. */
export async function epochPid(agent: RunningAgent, epoch: number): Promise<number> {
  const match = await agent.waitForOutput(
    `epoch ${epoch}'s pid`,
    new RegExp(`Envoy epoch ${epoch} running as pid (\\d+)`),
  );
  return Number(match[1]);
}

/** Whether a process still runs (a zombie awaiting its reaper counts as gone). */
export async function isRunning(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return false;
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

export async function readBootstrap(
  root: TemporaryRoot,
): Promise<{ node: { metadata: Record<string, unknown> } }> {
  return JSON.parse(await readFile(root.resolve('etc/istio/proxy/envoy-rev.json'), 'utf8'));
}

/** Swaps the pod's downward-API volume, as the kubelet does when labels or annotations change. */
export function updatePodInfo(
  root: TemporaryRoot,
  files: { labels: string; annotations: string },
): Promise<void> {
  return writeKubeletVolume(root.resolve('etc/istio/pod'), files);
}
