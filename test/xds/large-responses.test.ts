import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import test from 'ava';
import { execa } from 'execa';
import { waitFor } from '../helpers/wait-for.ts';
import { adsTypeUrls } from '../istiod/ads-service.ts';
import { AdsTestClient, adsServiceConstructor, type DiscoveryMessage } from './ads-test-client.ts';
import { environmentFor, nodeId, podRoot, startIstiodWithRawAds } from './xds-fixture.ts';

const proxyProcess = path.join(path.dirname(fileURLToPath(import.meta.url)), 'proxy-process.ts');
const responseCount = 1000;
const payloadBytes = 1024 * 1024;
const mebibyte = 1024 * 1024;

/** A value from `/proc/<pid>/status` in bytes (VmRSS: now; VmHWM: the peak so far). */
function memory(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no ${field} for process ${pid}`);
  return Number(match[1]) * 1024;
}

test('1,000 responses of 1 MiB reach a slow Envoy in order while the proxy’s memory stays bounded', async (t) => {
  const root = await podRoot(t);
  // istiod pushes every response as soon as flow control lets it.
  const serialize = adsServiceConstructor().service.StreamAggregatedResources?.responseSerialize;
  if (!serialize) throw new Error('no response serializer for StreamAggregatedResources');
  const payload = Buffer.alloc(payloadBytes, 0x5a);
  let pushed = 0;
  /** Since when istiod has been waiting for flow control to let it write again. */
  let waitingSince: number | undefined;
  const istiod = await startIstiodWithRawAds(t, root, {
    StreamAggregatedResources: (call: ServerDuplexStream<Buffer, Buffer>) => {
      call.on('error', () => {});
      call.once('data', async () => {
        for (let index = 0; index < responseCount; index += 1) {
          const response = serialize({
            version_info: String(index),
            resources: [{ type_url: 'type.googleapis.com/google.protobuf.BytesValue', value: payload }],
            type_url: adsTypeUrls.cluster,
            nonce: String(index),
          });
          pushed += 1;
          if (!call.write(response)) {
            waitingSince = Date.now();
            await once(call, 'drain');
            waitingSince = undefined;
          }
        }
      });
    },
  });

  const environment = await environmentFor(istiod.address);
  const child = execa(process.execPath, ['--expose-gc', proxyProcess, JSON.stringify({ environment })], {
    cwd: root.directory,
    extendEnv: false,
    env: {},
    reject: false,
    buffer: false,
    cleanup: true,
    stdin: 'ignore',
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  let errors = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    errors += chunk.toString();
  });
  let exited = false;
  void child.then(() => {
    exited = true;
  });
  t.teardown(async () => {
    child.kill('SIGKILL');
    await child;
  });
  await waitFor('the proxy process to listen', () => {
    if (exited) throw new Error(`the proxy process exited:\n${errors}`);
    return output.includes('ready');
  });
  const pid = child.pid ?? 0;
  /** What the proxy holds after a full collection (it prints one `memory` line per SIGUSR2). */
  const liveMemory = async (): Promise<{ rss: number; arrayBuffers: number }> => {
    const seen = output.split('\n').filter((line) => line.startsWith('memory ')).length;
    child.kill('SIGUSR2');
    const line = await waitFor(
      'the proxy to report its memory',
      () => output.split('\n').filter((candidate) => candidate.startsWith('memory '))[seen],
    );
    return JSON.parse(line.slice('memory '.length)) as { rss: number; arrayBuffers: number };
  };
  const idle = await liveMemory();
  const baseline = memory(pid, 'VmRSS');
  const startupPeak = memory(pid, 'VmHWM');

  // The slow Envoy: it stops reading after the first response, then reads with a pause after each one.
  const nonces: number[] = [];
  let sizeMismatches = 0;
  let reading = false;
  let peakAtHalf = 0;
  const envoy = new AdsTestClient(
    t,
    path.join(root.directory, 'etc/istio/proxy/XDS'),
    'StreamAggregatedResources',
    {
      keep: false,
      onResponse: (response: DiscoveryMessage) => {
        nonces.push(Number(response.nonce));
        const [resource] = response.resources as Array<{ value: Buffer }>;
        if (resource?.value.length !== payloadBytes) sizeMismatches += 1;
        if (nonces.length === responseCount / 2) peakAtHalf = memory(pid, 'VmHWM');
        envoy.stream.pause();
        if (reading) setTimeout(() => envoy.stream.resume(), 1);
      },
    },
  );
  envoy.send({ node: { id: nodeId }, type_url: adsTypeUrls.cluster, resource_names: [] });

  // While Envoy reads nothing, istiod is soon held back for good: the proxy stops reading too.
  await waitFor('istiod to be held back by the stalled Envoy', () => {
    if (pushed === responseCount) return true;
    return waitingSince !== undefined && Date.now() - waitingSince > 1000;
  });
  const pushedWhileStalled = pushed;
  const stalled = await liveMemory();
  reading = true;
  envoy.stream.resume();
  await waitFor(`${responseCount} responses`, () => nonces.length >= responseCount, {
    timeoutMilliseconds: 90_000,
  });
  const peak = memory(pid, 'VmHWM');
  const done = await liveMemory();
  const growth = peak - Math.max(baseline, startupPeak);
  const secondHalfGrowth = peak - peakAtHalf;
  const mib = (bytes: number) => `${(bytes / mebibyte).toFixed(1)} MiB`;
  t.log(
    `buffers held by the proxy: ${mib(idle.arrayBuffers)} idle, ${mib(stalled.arrayBuffers)} with Envoy stalled (istiod pushed ${pushedWhileStalled} responses), ${mib(done.arrayBuffers)} after; RSS ${mib(baseline)} at start, peak ${mib(peakAtHalf)} after ${responseCount / 2} responses and ${mib(peak)} after ${responseCount} (${mib(responseCount * payloadBytes)} passed)`,
  );

  t.true(pushedWhileStalled < 150, `istiod pushed ${pushedWhileStalled} responses to an Envoy that read one`);
  // What the proxy holds for a stalled Envoy: a few responses in each stream's buffers, not the backlog.
  const held = stalled.arrayBuffers - idle.arrayBuffers;
  t.true(held < 48 * mebibyte, `the proxy held ${mib(held)} of responses for a stalled Envoy`);
  t.true(
    done.arrayBuffers - idle.arrayBuffers < 8 * mebibyte,
    'nothing is held once the responses are through',
  );
  t.is(pushed, responseCount);
  t.deepEqual(
    nonces,
    Array.from({ length: responseCount }, (_, index) => index),
    'every response, in order',
  );
  t.is(sizeMismatches, 0);
  // A proxy that buffered what the slow Envoy had not read would grow towards 1 GiB. What it holds is a few
  // messages per direction; the rest of the growth is freed buffers V8 collects lazily (up to ~64 MiB of
  // external memory between collections), so the bound is on growth that keeps coming, not on one spike.
  t.true(growth < 128 * mebibyte, `the proxy grew by ${mib(growth)}`);
  t.true(
    secondHalfGrowth < 32 * mebibyte,
    `the proxy kept growing: ${mib(secondHalfGrowth)} in the second half`,
  );
});
