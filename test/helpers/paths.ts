import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root, wherever the tests run from. */
export const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The agent's entry point, run by Node 24 directly (type stripping). */
export const agentEntryPoint = path.join(repositoryRoot, 'agent/main.ts');
