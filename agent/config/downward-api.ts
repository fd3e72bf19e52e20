import { ConfigError, quoteForError } from './errors.ts';
import { unquoteGoString } from './go-quote.ts';

/**
 * Parses a Kubernetes downward-API file (`/etc/istio/pod/labels` or `annotations`): one `key="value"`
 * per line with a Go-quoted value. Lines without `=` are skipped, as Istio does; a value that does not
 * unquote is an error naming the file and line.
 */
export function parseDownwardApiFile(fileName: string, content: string): Record<string, string> {
  const entries: Record<string, string> = {};
  const lines = content.split('\n');
  for (const [lineIndex, rawLine] of lines.entries()) {
    const line = rawLine.replace(/\r$/, '');
    const separator = line.indexOf('=');
    if (separator < 0) continue;
    const key = line.slice(0, separator);
    const quotedValue = line.slice(separator + 1);
    const value = unquoteGoString(quotedValue);
    if (value === undefined) {
      throw new ConfigError(
        `${fileName}:${lineIndex + 1}`,
        `value of ${quoteForError(key)} is not a Go-quoted string: ${quoteForError(quotedValue)} (expected key="value")`,
      );
    }
    entries[key] = value;
  }
  return entries;
}
