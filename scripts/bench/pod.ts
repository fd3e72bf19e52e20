/**
 * A full pod for the benchmarks, from the tests' own helpers (test/agent/mesh.ts): the kubelet's
 * downward-API files, a test istiod (CA and ADS), the sample application and the real agent running the
 * Envoy stand-in, plus the probes the benchmarks time it with.
 */
import { get } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { type Mesh, startMesh } from '../../test/agent/mesh.ts';
import type { Lifetime } from '../../test/helpers/lifetime.ts';

export type { Mesh };

export function startPod(lifetime: Lifetime, options: Parameters<typeof startMesh>[1] = {}): Promise<Mesh> {
  return startMesh(lifetime, options);
}

export interface ProbeResult {
  readonly milliseconds: number;
  /** 0 when nothing answered. */
  readonly status: number;
  /** The socket error's code (ECONNREFUSED, ECONNRESET, …) when nothing answered. */
  readonly error?: string;
}

/** One GET on a new connection (no keep-alive), as the kubelet probes; never throws. */
export function probe(url: string, timeoutMilliseconds = 5_000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const started = performance.now();
    const request = get(url, { agent: false, timeout: timeoutMilliseconds }, (response) => {
      response.resume();
      response.on('end', () =>
        resolve({ milliseconds: performance.now() - started, status: response.statusCode ?? 0 }),
      );
      response.on('error', (error: NodeJS.ErrnoException) =>
        resolve({ milliseconds: performance.now() - started, status: 0, error: error.code ?? error.message }),
      );
    });
    request.on('timeout', () => request.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    request.on('error', (error: NodeJS.ErrnoException) =>
      resolve({ milliseconds: performance.now() - started, status: 0, error: error.code ?? error.message }),
    );
  });
}

/**
 * Polls `url` every `intervalMilliseconds` until it answers 200; resolves with `performance.now()` at that
 * answer. A fine interval, because this is what the start-up figures are timed with.
 */
export async function waitForOk(
  url: string,
  {
    intervalMilliseconds = 10,
    timeoutMilliseconds = 120_000,
    isAlive = (): boolean => true,
  }: { intervalMilliseconds?: number; timeoutMilliseconds?: number; isAlive?: () => boolean } = {},
): Promise<number> {
  const deadline = performance.now() + timeoutMilliseconds;
  for (;;) {
    const answer = await probe(url, 2_000);
    if (answer.status === 200) return performance.now();
    if (!isAlive()) throw new Error(`the agent exited before ${url} answered 200`);
    if (performance.now() > deadline)
      throw new Error(`${url} did not answer 200 within ${timeoutMilliseconds} ms`);
    await delay(intervalMilliseconds);
  }
}
