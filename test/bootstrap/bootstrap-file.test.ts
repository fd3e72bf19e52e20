import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import test from 'ava';
import { writeBootstrapFile } from '../../agent/proxy/bootstrap-file.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';

test('the bootstrap file is written whole, into a created directory, with no temporary files left', async (t) => {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const file = root.resolve('etc/istio/proxy/envoy-rev.json');
  await writeBootstrapFile(file, { node: { id: 'a' } });
  t.deepEqual(JSON.parse(await readFile(file, 'utf8')), { node: { id: 'a' } });
  t.deepEqual(await readdir(root.resolve('etc/istio/proxy')), ['envoy-rev.json']);
});

test('rewriting replaces the file by rename: a reader holding the old file keeps the old content', async (t) => {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const file = root.resolve('envoy-rev.json');
  await writeBootstrapFile(file, { node: { id: 'first' } });
  const before = await stat(file);
  const { open } = await import('node:fs/promises');
  const reader = await open(file, 'r');
  t.teardown(() => reader.close());
  await writeBootstrapFile(file, { node: { id: 'second' }, padding: 'x'.repeat(100_000) });
  t.not((await stat(file)).ino, before.ino, 'a new inode, not an in-place rewrite');
  t.deepEqual(JSON.parse(await reader.readFile('utf8')), { node: { id: 'first' } });
  t.is(JSON.parse(await readFile(file, 'utf8')).node.id, 'second');
  t.deepEqual(await readdir(root.directory), ['envoy-rev.json']);
});

test('a write that cannot happen names the file and leaves nothing behind', async (t) => {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  // The target path is an existing directory: rename fails after the temporary file was written.
  const directory = root.resolve('envoy-rev.json');
  await (await import('node:fs/promises')).mkdir(directory);
  await writeFile(root.resolve('envoy-rev.json/keep'), '');
  const error = await t.throwsAsync(writeBootstrapFile(directory, {}));
  t.regex(error.message, /^cannot write .*envoy-rev\.json: /);
  t.deepEqual(await readdir(root.directory), ['envoy-rev.json']);
});
