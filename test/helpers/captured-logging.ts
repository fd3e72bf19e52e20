import { createLogging, type Logging } from '../../agent/log.ts';

/** The agent's loggers at debug level writing Istio's text lines into an array, for tests to read. */
export function captureLogging(): { readonly logging: Logging; readonly lines: string[] } {
  const lines: string[] = [];
  const logging = createLogging({
    levels: { default: 'debug' },
    asJson: false,
    destination: { write: (line) => void lines.push(line) },
  });
  return { logging, lines };
}
