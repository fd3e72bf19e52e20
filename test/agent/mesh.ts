import { type SampleApp, startSampleApp } from '../fixtures/sample-app.ts';
import { samplePodAnnotations, samplePodAppEnvironment, samplePodLabels } from '../fixtures/sample-pod.ts';
import { type RunningAgent, startAgent } from '../helpers/agent-process.ts';
import { type ControlPlane, startControlPlane } from '../helpers/control-plane.ts';
import { writeKubeletVolume } from '../helpers/kubelet-volume.ts';
import type { Lifetime } from '../helpers/lifetime.ts';
import { createTemporaryRoot, type TemporaryRoot } from '../helpers/temporary-root.ts';

export interface Mesh {
  readonly root: TemporaryRoot;
  readonly controlPlane: ControlPlane;
  readonly app: SampleApp;
  readonly agent: RunningAgent;
  /** Through the Envoy stand-in's 15021 listener, as the kubelet probes. */
  readonly readinessUrl: string;
  /** The agent's status port. */
  readonly statusUrl: string;
}

/**
 * A pod with everything the agent talks to: the kubelet's downward-API files, a test istiod (CA and ADS),
 * an application with Prometheus metrics and a health path, and the real agent running the Envoy stand-in.
 */
export async function startMesh(
  t: Lifetime,
  options: {
    environment?: Record<string, string>;
    proxyConfig?: Record<string, unknown>;
    /** Another entry point for the agent, e.g. the built `dist/agent/main.js`. */
    entryPoint?: string;
  } = {},
): Promise<Mesh> {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const app = await startSampleApp();
  t.teardown(() => app.stop());
  await writeKubeletVolume(root.resolve('etc/istio/pod'), {
    labels: samplePodLabels(),
    annotations: samplePodAnnotations(),
  });
  const controlPlane = await startControlPlane(t, root);
  const agent = await startAgent(
    t,
    root,
    {
      ...samplePodAppEnvironment(app.port),
      ...options.environment,
    },
    {
      proxyConfig: {
        ...controlPlane.proxyConfig,
        drainDuration: '1s',
        parentShutdownDuration: '1s',
        ...options.proxyConfig,
      },
      ...(options.entryPoint === undefined ? {} : { entryPoint: options.entryPoint }),
    },
  );
  return {
    root,
    controlPlane,
    app,
    agent,
    readinessUrl: `http://127.0.0.1:${agent.ports.envoyStatus}/healthz/ready`,
    statusUrl: `http://127.0.0.1:${agent.ports.status}`,
  };
}

/** A GET that never throws: status 0 when nothing answered. */
export async function get(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; body: string; contentType: string }> {
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(5_000) });
    return {
      status: response.status,
      body: await response.text(),
      contentType: response.headers.get('content-type') ?? '',
    };
  } catch {
    return { status: 0, body: '', contentType: '' };
  }
}
