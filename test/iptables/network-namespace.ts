import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { agentEntryPoint, repositoryRoot } from '../helpers/paths.ts';
import { waitFor } from '../helpers/wait-for.ts';

const tcpProbe = path.join(repositoryRoot, 'test/iptables/fixtures/tcp-probe.ts');

/** Why network namespace tests cannot run here, or undefined when they can (checked by creating one). */
export async function networkNamespacesUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'they need root (ip netns add, iptables)';
  const name = `pa-probe-${randomBytes(4).toString('hex')}`;
  const added = await execa('ip', ['netns', 'add', name], { reject: false });
  if (added.exitCode !== 0) {
    return `\`ip netns add\` failed: ${(added.stderr || String(added.message)).trim()} (needs iproute2 and a kernel that allows network namespaces)`;
  }
  await execa('ip', ['netns', 'del', name], { reject: false });
  const restore = await execa('iptables-restore', ['--version'], { reject: false });
  if (restore.exitCode !== 0) return 'iptables-restore is missing (Debian package iptables)';
  return undefined;
}

/**
 * Two network namespaces joined by a veth pair: the pod (10.200.0.2 and fd00:200::2, default routes via
 * the peer) and a peer (10.200.0.1, fd00:200::1) that also owns the "remote" addresses 10.1.2.3, 10.1.4.4
 * and fd00:1::3 on its loopback, so uncaptured outbound connections really reach something.
 */
export interface PodNetwork {
  readonly pod: string;
  readonly peer: string;
  readonly podAddress: string;
  readonly podAddress6: string;
  /** Runs the real `pilot-agent istio-iptables` inside the pod namespace. */
  istioIptables(
    args: readonly string[],
    environment?: Record<string, string>,
  ): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** `iptables -t <table> -S` (or ip6tables) inside the pod namespace, as lines. */
  rules(table: string, program?: 'iptables' | 'ip6tables'): Promise<string[]>;
  /** Runs a command inside a namespace; fails the test when it fails. */
  run(namespace: string, file: string, args: readonly string[]): Promise<string>;
  /** Starts TCP listeners answering "<label>:<port>"; stopped in teardown. */
  listen(namespace: string, label: string, ports: readonly number[]): Promise<void>;
  /** Connects from a namespace (as `id` when given) and returns the listener's answer or "error: …". */
  connect(namespace: string, host: string, port: number, id?: number): Promise<string>;
}

export async function createPodNetwork(t: ExecutionContext): Promise<PodNetwork> {
  const suffix = randomBytes(4).toString('hex');
  const pod = `pa-pod-${suffix}`;
  const peer = `pa-peer-${suffix}`;
  const ip = (args: readonly string[]) => execa('ip', args);
  await ip(['netns', 'add', pod]);
  t.teardown(() => execa('ip', ['netns', 'del', pod], { reject: false }));
  await ip(['netns', 'add', peer]);
  t.teardown(() => execa('ip', ['netns', 'del', peer], { reject: false }));
  for (const namespace of [pod, peer]) await ip(['-n', namespace, 'link', 'set', 'lo', 'up']);
  await ip(['-n', pod, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', peer]);
  await ip(['-n', pod, 'addr', 'add', '10.200.0.2/24', 'dev', 'eth0']);
  await ip(['-n', peer, 'addr', 'add', '10.200.0.1/24', 'dev', 'eth0']);
  // nodad: the IPv6 addresses are usable at once instead of after duplicate address detection.
  await ip(['-n', pod, 'addr', 'add', 'fd00:200::2/64', 'dev', 'eth0', 'nodad']);
  await ip(['-n', peer, 'addr', 'add', 'fd00:200::1/64', 'dev', 'eth0', 'nodad']);
  await ip(['-n', pod, 'link', 'set', 'eth0', 'up']);
  await ip(['-n', peer, 'link', 'set', 'eth0', 'up']);
  await ip(['-n', pod, 'route', 'add', 'default', 'via', '10.200.0.1']);
  await ip(['-n', pod, '-6', 'route', 'add', 'default', 'via', 'fd00:200::1']);
  for (const address of ['10.1.2.3/32', '10.1.4.4/32', 'fd00:1::3/128']) {
    await ip(['-n', peer, 'addr', 'add', address, 'dev', 'lo']);
  }

  const inNamespace = (namespace: string, file: string, args: readonly string[]) =>
    execa('ip', ['netns', 'exec', namespace, file, ...args], { reject: false, timeout: 30_000 });

  return {
    pod,
    peer,
    podAddress: '10.200.0.2',
    podAddress6: 'fd00:200::2',
    async istioIptables(args, environment = {}) {
      const result = await execa(
        'ip',
        ['netns', 'exec', pod, process.execPath, agentEntryPoint, 'istio-iptables', ...args],
        { reject: false, timeout: 30_000, env: environment },
      );
      return { exitCode: result.exitCode ?? 1, stdout: String(result.stdout), stderr: String(result.stderr) };
    },
    async rules(table, program = 'iptables') {
      const result = await inNamespace(pod, program, ['-t', table, '-S']);
      if (result.exitCode !== 0) throw new Error(`${program} -t ${table} -S failed: ${result.stderr}`);
      return String(result.stdout).trimEnd().split('\n');
    },
    async run(namespace, file, args) {
      const result = await inNamespace(namespace, file, args);
      if (result.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} failed: ${result.stderr}`);
      return String(result.stdout);
    },
    async listen(namespace, label, ports) {
      const listener = execa(
        'ip',
        ['netns', 'exec', namespace, process.execPath, tcpProbe, 'listen', label, ...ports.map(String)],
        {
          reject: false,
          buffer: false,
          cleanup: true,
        },
      );
      t.teardown(() => {
        listener.kill();
      });
      let output = '';
      listener.stdout?.setEncoding('utf8');
      listener.stdout?.on('data', (chunk: string) => {
        output += chunk;
      });
      let exited = false;
      void listener.then(() => {
        exited = true;
      });
      await waitFor(`${label} listeners on ${ports.join(', ')} in ${namespace}`, () => {
        if (exited) throw new Error('the listener exited');
        return output.includes('listening');
      });
    },
    async connect(namespace, host, port, id) {
      const args = [tcpProbe, 'connect', host, String(port), ...(id === undefined ? [] : [String(id)])];
      const result = await inNamespace(namespace, process.execPath, args);
      return String(result.stdout).trim() || `error: exit ${result.exitCode} ${String(result.stderr).trim()}`;
    },
  };
}
