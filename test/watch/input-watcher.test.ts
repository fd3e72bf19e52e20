import { writeFile } from 'node:fs/promises';
import test, { type ExecutionContext } from 'ava';
import pino from 'pino';
import { InputWatcher } from '../../agent/watch/input-watcher.ts';
import { writeKubeletVolume } from '../helpers/kubelet-volume.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';
import { waitFor } from '../helpers/wait-for.ts';

const logger = pino({ level: 'silent' });

async function watching(
  t: ExecutionContext,
  files: string[],
  { directories = [] as string[], debounceMilliseconds = 50 } = {},
) {
  const watcher = new InputWatcher({ files, directories, debounceMilliseconds, logger });
  const batches: (readonly string[])[] = [];
  watcher.on('changed', (changed) => batches.push(changed));
  await watcher.start();
  t.teardown(() => watcher.stop());
  return batches;
}

test("a kubelet-style ..data swap of the pod's volume is one batch naming its files", async (t) => {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const podDirectory = root.resolve('etc/istio/pod');
  await writeKubeletVolume(podDirectory, { labels: 'app="a"\n', annotations: 'x="1"\n' });
  const labels = `${podDirectory}/labels`;
  const annotations = `${podDirectory}/annotations`;
  const batches = await watching(t, [labels, annotations]);

  await writeKubeletVolume(podDirectory, { labels: 'app="b"\n', annotations: 'x="1"\n' });
  await waitFor('a change batch', () => batches.length > 0);
  // One swap replaces the whole volume: both files may have changed; the reload compares contents.
  t.deepEqual(batches, [[annotations, labels]]);
});

test('a burst of writes within the debounce window is reported once; unwatched neighbours are ignored', async (t) => {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const mesh = await root.write('etc/istio/config/mesh', 'a: 1\n');
  const neighbour = await root.write('etc/istio/config/other', 'b: 1\n');
  const batches = await watching(t, [mesh], { debounceMilliseconds: 300 });
  for (let index = 0; index < 5; index++) await writeFile(mesh, `a: ${index}\n`);
  await writeFile(neighbour, 'b: 2\n');
  await waitFor('the debounced batch', () => batches.length > 0);
  // A later write is a second batch: the first one held the whole burst.
  await writeFile(mesh, 'a: final\n');
  await waitFor('the second batch', () => batches.length > 1);
  t.deepEqual(batches, [[mesh], [mesh]]);
});

test('a file created after the watch started is a change; a watched directory reports its own path', async (t) => {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const override = root.resolve('etc/istio/custom-bootstrap/override.yaml');
  const certificates = root.resolve('etc/certs');
  await root.write('etc/certs/.keep', '');
  await root.write('etc/istio/custom-bootstrap/.keep', '');
  const batches = await watching(t, [override], { directories: [certificates] });
  await root.write('etc/istio/custom-bootstrap/override.yaml', 'admin: {}\n');
  await root.write('etc/certs/cert-chain.pem', 'pem');
  await waitFor('both changes', () => new Set(batches.flat()).size === 2);
  t.deepEqual([...new Set(batches.flat())].sort(), [certificates, override].sort());
});
