import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CommandModule } from 'yargs';
import { ConfigError } from '../config/errors.ts';
import {
  defaultInjectionSettings,
  defaultProxyImage,
  type InjectionSettings,
  parseMeshConfig,
} from '../inject/injection-settings.ts';
import type { CommandContext } from './context.ts';

/**
 * `pilot-agent kube-inject`: Istio's `istioctl kube-inject` without a cluster. Reads manifests from a file or
 * standard input and writes them with the sidecar added; a bad document stops everything (exit 255) and
 * nothing is written.
 */
export function kubeInjectCommand(context: CommandContext): CommandModule {
  return {
    command: 'kube-inject',
    describe: 'Add the sidecar to Kubernetes workload manifests',
    builder: (yargs) =>
      yargs
        .usage(
          '$0 kube-inject -f <file|-> [-o <file>] [flags]\n\n' +
            'Adds the istio-proxy container, the istio-init container and their volumes to every Deployment, ' +
            'StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob and Pod (also inside a ' +
            'List); other documents pass through unchanged. Already injected pods and pods labelled or ' +
            'annotated sidecar.istio.io/inject: "false" are left as they are.',
        )
        .option('filename', {
          alias: 'f',
          type: 'string',
          describe: 'The manifest to inject (multi-document YAML or JSON), or - for standard input',
        })
        .option('output', {
          alias: 'o',
          type: 'string',
          describe: 'Write the injected manifest to this file instead of standard output',
        })
        .option('image', {
          type: 'string',
          default: defaultProxyImage,
          describe: 'Image of the injected istio-proxy and istio-init containers',
        })
        .option('meshConfig', {
          alias: 'meshConfigFile',
          type: 'string',
          describe:
            'Mesh config file (MeshConfig YAML, or the istio ConfigMap): its defaultConfig, trustDomain, enablePrometheusMerge and proxyListenPort shape the sidecar',
        })
        .option('revision', {
          alias: 'r',
          type: 'string',
          default: defaultInjectionSettings.revision,
          describe: 'Control plane revision: the CA address becomes istiod-<revision>',
        })
        .option('istioNamespace', {
          alias: 'i',
          type: 'string',
          default: defaultInjectionSettings.istioNamespace,
          describe: 'Namespace of istiod',
        })
        .option('clusterId', {
          type: 'string',
          default: defaultInjectionSettings.clusterId,
          describe: 'The cluster name (ISTIO_META_CLUSTER_ID)',
        })
        .example('$0 kube-inject -f deployment.yaml -o deployment-injected.yaml', '')
        .example('kubectl get deployment web -o yaml | $0 kube-inject -f - | kubectl apply -f -', ''),
    handler: async (argv) => {
      const last = (name: string): string | undefined => {
        const value = argv[name];
        const single = Array.isArray(value) ? value[value.length - 1] : value;
        return single === undefined ? undefined : String(single);
      };
      // istioctl rejects flags it does not know; silently ignoring an --injectConfigFile would mislead.
      const [unknownFlag] = context.unknownFlags;
      if (unknownFlag !== undefined) {
        throw new ConfigError(unknownFlag, 'is not a kube-inject flag (see pilot-agent kube-inject --help)');
      }
      const extra = (argv._ as unknown[]).slice(1);
      if (extra.length > 0) {
        throw new ConfigError(
          'kube-inject',
          `unexpected argument ${JSON.stringify(String(extra[0]))} (the manifest is given with -f)`,
        );
      }
      const filename = last('filename');
      if (filename === undefined || filename === '') {
        throw new ConfigError('--filename', 'is required (a manifest file, or - to read standard input)');
      }
      const image = last('image') ?? defaultProxyImage;
      if (image.trim() === '') throw new ConfigError('--image', 'must not be empty');

      const meshConfigFile = last('meshConfig');
      const mesh =
        meshConfigFile === undefined
          ? defaultInjectionSettings.mesh
          : parseMeshConfig(meshConfigFile, await readInput(context, meshConfigFile, '--meshConfig'));
      const settings: InjectionSettings = {
        image,
        revision: last('revision') ?? '',
        istioNamespace: last('istioNamespace') || defaultInjectionSettings.istioNamespace,
        clusterId: last('clusterId') || defaultInjectionSettings.clusterId,
        mesh,
      };

      const input = await readInput(context, filename, '--filename');
      // Loaded here: the injector is not needed by the agent's other commands.
      const { injectManifests } = await import('../inject/kube-inject.ts');
      const result = injectManifests(input, settings, filename === '-' ? 'stdin' : filename);
      for (const warning of result.warnings) context.stderr.write(`${warning}\n`);
      const output = last('output');
      if (output === undefined || output === '' || output === '-') {
        context.stdout.write(result.output);
      } else {
        const target = path.resolve(context.workingDirectory, output);
        try {
          await writeFile(target, result.output);
        } catch (error) {
          throw new ConfigError(
            output,
            `cannot be written (${(error as NodeJS.ErrnoException).code ?? error})`,
          );
        }
      }
    },
  };
}

async function readInput(context: CommandContext, name: string, flag: string): Promise<string> {
  if (name === '-') {
    if (context.stdin === undefined) throw new ConfigError(flag, 'standard input is not available');
    const chunks: Buffer[] = [];
    for await (const chunk of context.stdin) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(path.resolve(context.workingDirectory, name), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError(name, `cannot be read (${code ?? (error as Error).message})`);
  }
}
