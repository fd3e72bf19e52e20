#!/usr/bin/env node
/**
 * Every benchmark in sequence (identity, start-up, idle RSS, metrics merge, readiness latency, hot restart,
 * XDS proxy), each in its own process with its output shown as it runs, then one table of the headline
 * figures: value, baseline measured in the same run, ratio, target, whether it is met. Sized to finish in
 * a few minutes on a 2-core machine; each benchmark also runs alone (`npm run bench:<name>`).
 *
 *   npm run bench
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Runs a bench script, echoing its output, and resolves with what it printed. */
function runBench(script: string, args: readonly string[]): Promise<string> {
  console.log(`\n=== ${script} ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(here, script), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stdout.write(chunk);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve(output) : reject(new Error(`${script} failed (${code ?? signal})`)),
    );
  });
}

/** The JSON object a bench prints on its last line. */
function lastJson<T>(output: string): T {
  const line = output.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as T;
}

/** A number captured from a bench's text output. */
function capture(output: string, pattern: RegExp, group = 1): number {
  const value = pattern.exec(output)?.[group];
  if (value === undefined) throw new Error(`no ${pattern} in the output`);
  return Number(value);
}

interface Row {
  readonly figure: string;
  readonly value: string;
  readonly baseline: string;
  readonly ratio: string;
  readonly target: string;
  readonly met: string;
}
const rows: Row[] = [];
const failures: string[] = [];
const row = (figure: string, value: string, baseline = '—', ratio = '—', target = '—', met = '—') =>
  rows.push({ figure, value, baseline, ratio, target, met });
const yesNo = (condition: boolean) => (condition ? 'yes' : 'NO');

/** Runs one bench and adds its rows; a failing bench is reported in the table and the others still run. */
async function section(name: string, script: string, args: readonly string[], add: (output: string) => void) {
  try {
    add(await runBench(script, args));
  } catch (error) {
    failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
    row(name, 'FAILED');
  }
}

const began = Date.now();
const loadAtStart = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');

await section('first certificate', 'first-certificate.ts', ['--runs', '5'], (output) => {
  const floor = capture(output, /node -e 0 \(baseline\)\s+(\d+) ms/);
  for (const algorithm of ['ECDSA P-256', 'RSA 2048']) {
    const value = capture(output, new RegExp(`pilot-agent, ${algorithm}\\s+(\\d+) ms`));
    row(
      `spawn → first certificate (${algorithm})`,
      `${value} ms`,
      `${floor} ms (node -e 0)`,
      `${(value / floor).toFixed(1)}×`,
    );
  }
});

await section('start-up', 'startup.ts', ['--runs', '5'], (output) => {
  const result = lastJson<{
    floorMilliseconds: number;
    envoyLaunchedMilliseconds: number;
    readyMilliseconds: number;
  }>(output);
  const floor = result.floorMilliseconds;
  row(
    'spawn → Envoy launched',
    `${Math.round(result.envoyLaunchedMilliseconds)} ms`,
    `${Math.round(floor)} ms (node -e 0)`,
    `${(result.envoyLaunchedMilliseconds / floor).toFixed(1)}×`,
  );
  row(
    'spawn → ready through 15021',
    `${Math.round(result.readyMilliseconds)} ms`,
    `${Math.round(floor)} ms (node -e 0)`,
    `${(result.readyMilliseconds / floor).toFixed(1)}×`,
  );
});

await section('idle RSS', 'idle-rss.ts', [], (output) => {
  const result = lastJson<{
    rows: Array<{ entryPoint: string; agentMegabytes: number; baselineMegabytes: number; ratio: number }>;
  }>(output);
  for (const measured of result.rows) {
    row(
      `agent idle RSS (${measured.entryPoint})`,
      `${measured.agentMegabytes} MiB`,
      `${measured.baselineMegabytes} MiB (idle node)`,
      `${measured.ratio.toFixed(2)}×`,
      '≤ 50 MiB',
      yesNo(measured.agentMegabytes <= 50),
    );
  }
});

await section(
  'metrics merge',
  'metrics-merge.ts',
  ['--standin-series', '100000', '--rounds', '8'],
  (output) => {
    const result = lastJson<{
      mergedMedianMilliseconds: number;
      directMedianMilliseconds: number;
      directBytes: number;
      ratio: number;
      peakRssGrowthMegabytes: number;
      agentBaselineRssMegabytes: number;
    }>(output);
    row(
      `merged scrape (stand-in ${(result.directBytes / 1e6).toFixed(0)} MB + app 1 MB)`,
      `${result.mergedMedianMilliseconds} ms`,
      `${result.directMedianMilliseconds} ms (Envoy directly)`,
      result.ratio.toFixed(2),
      '≤ 1.3',
      yesNo(result.ratio <= 1.3),
    );
    row(
      'peak RSS growth, 10 concurrent merged scrapes',
      `${result.peakRssGrowthMegabytes} MB`,
      `${result.agentBaselineRssMegabytes} MB (before)`,
      '—',
      '≤ 30 MB',
      yesNo(result.peakRssGrowthMegabytes <= 30),
    );
  },
);

await section('readiness', 'readiness-latency.ts', ['--standin'], (output) => {
  const result = lastJson<{
    readiness: { p50Milliseconds: number; p99Milliseconds: number; achievedRate: number };
    floor: { p50Milliseconds: number; p99Milliseconds: number };
  }>(output);
  const { readiness, floor } = result;
  row(
    `/healthz/ready via 15021 p50 @ ${Math.round(readiness.achievedRate)}/s`,
    `${readiness.p50Milliseconds} ms`,
    `${floor.p50Milliseconds} ms (do-nothing server)`,
    `${(readiness.p50Milliseconds / floor.p50Milliseconds).toFixed(1)}×`,
  );
  row(
    `/healthz/ready via 15021 p99 @ ${Math.round(readiness.achievedRate)}/s`,
    `${readiness.p99Milliseconds} ms`,
    `${floor.p99Milliseconds} ms (do-nothing server)`,
    `${(readiness.p99Milliseconds / floor.p99Milliseconds).toFixed(1)}×`,
    '≤ 5 ms',
    yesNo(readiness.p99Milliseconds <= 5),
  );
});

await section('hot restart', 'hot-restart.ts', ['--timed', '5', '--probed', '10'], (output) => {
  const result = lastJson<{
    quiet: { restarts: number; toLiveMedianMilliseconds: number; toOldGoneMedianMilliseconds: number };
    requests: number;
    failed: number;
    failureRatio: number;
  }>(output);
  row('label swap → new epoch LIVE', `${result.quiet.toLiveMedianMilliseconds} ms`);
  row(
    'label swap → old epoch gone (drain 1s + shutdown 1s)',
    `${result.quiet.toOldGoneMedianMilliseconds} ms`,
  );
  row(
    'failed probes via 15021 during 10 hot restarts',
    `${result.failed} / ${result.requests}`,
    '—',
    `${(result.failureRatio * 100).toFixed(3)} %`,
  );
});

await section('XDS proxy', 'xds-proxy.ts', [], (output) => {
  const p50 = /round trip p50 \(ms\)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/.exec(output);
  const large = /1 MiB responses, MiB \/ s\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)/.exec(output);
  if (!p50 || !large) throw new Error('xds-proxy.ts printed no table');
  row('ADS round trip p50 via the XDS proxy', `${p50[2]} ms`, `${p50[1]} ms (direct)`, `${p50[3]}×`);
  row(
    '1 MiB ADS pushes via the XDS proxy',
    `${large[2]} MiB/s`,
    `${large[1]} MiB/s (direct)`,
    `${large[3]}×`,
  );
});

const loadAtEnd = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
const headers: Row = {
  figure: 'figure',
  value: 'value',
  baseline: 'baseline',
  ratio: 'ratio',
  target: 'target',
  met: 'met?',
};
const columns = Object.keys(headers) as Array<keyof Row>;
const widths = columns.map((column) => Math.max(...[headers, ...rows].map((entry) => entry[column].length)));
const line = (entry: Row) =>
  `| ${columns.map((column, index) => entry[column].padEnd(widths[index] ?? 0)).join(' | ')} |`;
console.log(
  `\n=== summary, ${new Date().toISOString().slice(0, 10)}: ${os.cpus().length} cores, Linux ${os.release()}, node ${process.version}, load average ${loadAtStart} at start, ${loadAtEnd} at end, ${((Date.now() - began) / 1000).toFixed(0)} s`,
);
console.log(line(headers));
console.log(`|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`);
for (const entry of rows) console.log(line(entry));
for (const failure of failures) console.log(`failed: ${failure}`);
if (failures.length > 0) process.exitCode = 1;
