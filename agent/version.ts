import { readFileSync } from 'node:fs';
import { istioCompatibilityVersion } from './config/agent-config.ts';

export interface BuildInfo {
  readonly version: string;
  readonly istioVersion: string;
  readonly nodeVersion: string;
}

export function buildInfo(): BuildInfo {
  // package.json sits two levels up from both agent/version.ts and dist/agent/version.js's parent.
  const candidates = [
    new URL('../package.json', import.meta.url),
    new URL('../../package.json', import.meta.url),
  ];
  let version = 'unknown';
  for (const candidate of candidates) {
    try {
      const manifest = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'pilot-agent-ts' && manifest.version) {
        version = manifest.version;
        break;
      }
    } catch {
      // Try the next location.
    }
  }
  return { version, istioVersion: istioCompatibilityVersion, nodeVersion: process.version };
}
