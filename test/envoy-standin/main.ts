import { enableCompileCache } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * Entry point run by the `envoy` launcher. Node's on-disk compile cache (type-stripped, compiled modules)
 * roughly halves the stand-in's start-up, which tests and benchmarks that start Envoy many times feel; the
 * program itself lives in envoy-process.ts and is loaded once the cache is on.
 */
enableCompileCache(path.join(tmpdir(), 'envoy-standin-compile-cache'));
await import('./envoy-process.ts');
