#!/usr/bin/env node
// Median time from starting `pilot-agent proxy sidecar` to "first certificate held" against the test istiod
// (ECDSA P-256 and RSA 2048 keys), next to the start-up of a bare `node -e 0` measured in the same run.
// Usage: npm run bench:identity [-- --runs N]
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { TestIstiod } from '../../test/istiod/test-istiod.ts';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const agentEntryPoint = path.join(repositoryRoot, 'agent/main.ts');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '9' } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs: ${values.runs} is not a positive integer`);

const workspace = await mkdtemp(path.join(tmpdir(), 'bench-'));
const token = 'bench-token';
await writeFile(path.join(workspace, 'token'), token);
const istiod = await TestIstiod.start({
  rootCertFile: path.join(workspace, 'root-cert.pem'),
  tokenFile: path.join(workspace, 'token'),
});

interface Timing {
  /** From spawning the process. */
  readonly total: number;
  /** From the agent's "starting pilot-agent" line to `done`, by the agent's own log timestamps. */
  readonly inAgent: number;
}

/** Milliseconds from spawning `args` until `done` sees its output (or, without `done`, until it exits). */
function timeProcess(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; done?: RegExp },
): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
    let output = '';
    let result: number | undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      if (options.done && result === undefined && options.done.test(output)) {
        result = elapsed();
        child.kill('SIGTERM');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (!options.done) resolve({ total: elapsed(), inAgent: 0 });
      else if (result !== undefined)
        resolve({ total: result, inAgent: logInterval(output, /starting pilot-agent/, options.done) });
      else reject(new Error(`the agent exited (${code}) before its first certificate:\n${output}`));
    });
  });
}

/** Milliseconds between the log lines matching `from` and `to`, from their Istio-format timestamps. */
function logInterval(output: string, from: RegExp, to: RegExp): number {
  const time = (pattern: RegExp) => {
    const line = output.split('\n').find((candidate) => pattern.test(candidate));
    return Date.parse((line ?? '').split('\t')[0]?.replace(/(\.\d{3})\d*Z$/, '$1Z') ?? '');
  };
  return time(to) - time(from);
}

async function agentRun(algorithm: 'ECDSA' | 'RSA', index: number): Promise<Timing> {
  const root = path.join(workspace, `${algorithm}-${index}`);
  await mkdir(path.join(root, 'var/run/secrets/istio'), { recursive: true });
  await mkdir(path.join(root, 'var/run/secrets/tokens'), { recursive: true });
  await copyFile(
    path.join(workspace, 'root-cert.pem'),
    path.join(root, 'var/run/secrets/istio/root-cert.pem'),
  );
  await writeFile(path.join(root, 'var/run/secrets/tokens/istio-token'), token);
  return timeProcess([agentEntryPoint, 'proxy', 'sidecar'], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      POD_NAMESPACE: 'default',
      POD_NAME: 'bench',
      CA_ADDR: istiod.address,
      ...(algorithm === 'ECDSA' ? { ECC_SIGNATURE_ALGORITHM: 'ECDSA' } : {}),
    },
    done: /first certificate held/,
  });
}

const samples: Record<'baseline' | 'ECDSA' | 'RSA', Timing[]> = { baseline: [], ECDSA: [], RSA: [] };
// Interleaved, so that machine load drifting during the run affects all three alike.
for (let index = 0; index < runs; index++) {
  samples.baseline.push(await timeProcess(['-e', '0'], {}));
  samples.ECDSA.push(await agentRun('ECDSA', index));
  samples.RSA.push(await agentRun('RSA', index));
}
await istiod.stop();
await rm(workspace, { recursive: true, force: true });

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
};
const baseline = median(samples.baseline.map((timing) => timing.total));
console.log(
  `first certificate held, median of ${runs} runs (node ${process.version}, ${istiod.certificateRequests.length} CSRs signed)`,
);
console.log('                             process start   ratio   in the agent (start log → held)');
console.log(`  node -e 0 (baseline)       ${baseline.toFixed(0).padStart(8)} ms   1.0×`);
for (const algorithm of ['ECDSA', 'RSA'] as const) {
  const total = median(samples[algorithm].map((timing) => timing.total));
  const inAgent = median(samples[algorithm].map((timing) => timing.inAgent));
  const label = algorithm === 'ECDSA' ? 'pilot-agent, ECDSA P-256' : 'pilot-agent, RSA 2048';
  console.log(
    `  ${label.padEnd(26)} ${total.toFixed(0).padStart(8)} ms ${`${(total / baseline).toFixed(1)}×`.padStart(6)}   ${inAgent.toFixed(0).padStart(6)} ms`,
  );
}
