/**
 * Measures the bootstrap validator: building Envoy's schema (once per process) and checking a generated
 * bootstrap. Run: node scripts/bench/bootstrap-validator.ts
 */
import { buildAgentConfig, defaultProxyFlags } from '../../agent/config/agent-config.ts';
import { buildBootstrap } from '../../bootstrap/build.ts';
import { loadEnvoyApiSchema } from '../../bootstrap/envoy-schema.ts';
import { validateBootstrap } from '../../bootstrap/validate.ts';

const schema = loadEnvoyApiSchema();
console.log(
  `schema: ${schema.fileCount} files, ${schema.messageCount} messages, built in ${schema.loadMilliseconds.toFixed(0)} ms` +
    ` (skipped for missing imports: ${schema.skippedFiles.join(', ') || 'none'})`,
);

const config = buildAgentConfig({
  environment: { POD_NAMESPACE: 'default', POD_NAME: 'bench', INSTANCE_IP: '10.0.0.1' },
  flags: defaultProxyFlags,
  workingDirectory: '/',
  readFile: () => undefined,
});
const bootstrap = buildBootstrap(config);
const first = performance.now();
const result = validateBootstrap(bootstrap);
const firstMilliseconds = performance.now() - first;
if (!result.valid) throw new Error(`generated bootstrap invalid at ${result.fieldPath}: ${result.message}`);
const rounds = 200;
const started = performance.now();
for (let round = 0; round < rounds; round++) validateBootstrap(bootstrap);
const average = (performance.now() - started) / rounds;
console.log(
  `validation: first ${firstMilliseconds.toFixed(1)} ms, then ${average.toFixed(2)} ms each (${rounds} rounds)`,
);
