import { setTimeout as delay } from 'node:timers/promises';
import type { CommandModule } from 'yargs';
import { ConfigError } from '../config/errors.ts';
import { ExitCode } from '../exit-codes.ts';
import type { CommandContext } from './context.ts';

export interface WaitOptions {
  readonly url: string;
  readonly periodMilliseconds: number;
  readonly requestTimeoutMilliseconds: number;
  readonly timeoutMilliseconds: number;
}

/**
 * Istio's `pilot-agent wait`: every period, GET the readiness URL (each attempt bounded by the request
 * timeout); only 200 counts. Resolves with undefined once ready, or with the last error after the timeout.
 */
export async function waitUntilReady(
  options: WaitOptions,
): Promise<{ readonly lastError: string } | undefined> {
  const deadline = Date.now() + options.timeoutMilliseconds;
  let lastError = '<nil>';
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return { lastError };
    // Istio waits one period before every attempt, the first included.
    if (remaining < options.periodMilliseconds) {
      await delay(remaining);
      return { lastError };
    }
    await delay(options.periodMilliseconds);
    const error = await checkReady(options.url, options.requestTimeoutMilliseconds);
    if (error === undefined) return undefined;
    lastError = error;
  }
}

async function checkReady(url: string, timeoutMilliseconds: number): Promise<string | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMilliseconds) });
    await response.arrayBuffer();
    return response.status === 200 ? undefined : `HTTP status code ${response.status}`;
  } catch (error) {
    return describeFetchError(url, error, timeoutMilliseconds);
  }
}

function describeFetchError(url: string, error: unknown, timeoutMilliseconds: number): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) {
    return `Get "${url}": no answer within ${timeoutMilliseconds} ms`;
  }
  const cause = error instanceof Error ? (error.cause as NodeJS.ErrnoException | undefined) : undefined;
  const detail = cause?.message ?? (error instanceof Error ? error.message : String(error));
  return `Get "${url}": ${detail}`;
}

export function waitCommand(context: CommandContext, setExitCode: (code: number) => void): CommandModule {
  return {
    command: 'wait',
    describe: 'Waits until the Envoy proxy is ready (for a postStart hook)',
    builder: (yargs) =>
      yargs
        .option('url', {
          type: 'string',
          default: 'http://localhost:15021/healthz/ready',
          describe: 'URL to use in requests',
        })
        .option('periodMillis', {
          type: 'number',
          default: 500,
          describe: 'number of milliseconds to wait between attempts',
        })
        .option('requestTimeoutMillis', {
          type: 'number',
          default: 500,
          describe: 'number of milliseconds to wait for response',
        })
        .option('timeoutSeconds', {
          type: 'number',
          default: 60,
          describe: 'maximum number of seconds to wait for Envoy to be ready',
        }),
    handler: async (argv) => {
      const options: WaitOptions = {
        url: String(argv.url),
        periodMilliseconds: nonNegative('--periodMillis', argv.periodMillis),
        requestTimeoutMilliseconds: nonNegative('--requestTimeoutMillis', argv.requestTimeoutMillis),
        timeoutMilliseconds: nonNegative('--timeoutSeconds', argv.timeoutSeconds) * 1000,
      };
      const log = context.createLogging({ levels: { default: 'info' }, asJson: false }).scope('default');
      log.info(`Waiting for Envoy proxy to be ready (timeout: ${argv.timeoutSeconds} seconds)...`);
      const failure = await waitUntilReady(options);
      if (failure === undefined) {
        log.info('Envoy is ready!');
        setExitCode(ExitCode.ok);
        return;
      }
      context.stderr.write(
        `Error: timeout waiting for Envoy proxy to become ready. Last error: ${failure.lastError}\n`,
      );
      setExitCode(ExitCode.startupError);
    },
  };
}

function nonNegative(flag: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new ConfigError(flag, `${JSON.stringify(value)} is not a non-negative number`);
  }
  return value;
}
