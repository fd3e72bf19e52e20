import type { ExpositionFormat } from './format.ts';

/** A line starting with `#`, as read. */
export type HeaderLine =
  | { readonly kind: 'help'; readonly name: string; readonly help: string }
  | { readonly kind: 'type'; readonly name: string; readonly type: string }
  | { readonly kind: 'unit'; readonly name: string; readonly unit: string }
  | { readonly kind: 'eof' }
  | { readonly kind: 'comment' };

const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const unitName = /^[a-zA-Z0-9_:]*$/;

export function isMetricName(name: string): boolean {
  return metricName.test(name);
}

/**
 * Parses a `#` line: `# HELP name text`, `# TYPE name type`, OpenMetrics' `# UNIT name unit` and `# EOF`.
 * Returns the reason as a string when the line is not valid in `format`. Text allows any other comment;
 * OpenMetrics does not.
 */
export function parseHeaderLine(line: string, format: ExpositionFormat): HeaderLine | string {
  if (format === 'openmetrics' && line === '# EOF') return { kind: 'eof' };
  // Text tolerates blanks and tabs between the tokens; OpenMetrics wants single spaces.
  const blanks =
    format === 'text' ? /^#[ \t]*(\S+)(?:[ \t]+(\S+))?(?:[ \t]+(.*))?$/ : /^# (\S+) (\S+)(?: (.*))?$/;
  const match = blanks.exec(line);
  const keyword = match?.[1];
  if (!match || (keyword !== 'HELP' && keyword !== 'TYPE' && keyword !== 'UNIT')) {
    return format === 'text' ? { kind: 'comment' } : 'not a HELP, TYPE, UNIT or EOF line';
  }
  if (keyword === 'UNIT' && format === 'text') return { kind: 'comment' };
  const name = match[2];
  if (name === undefined || !metricName.test(name)) return `invalid metric name in ${keyword} line`;
  const rest = match[3] ?? '';
  if (keyword === 'HELP') {
    const help = unescapeHelp(rest, format);
    return help === undefined ? 'invalid escape sequence in HELP text' : { kind: 'help', name, help };
  }
  if (keyword === 'TYPE') {
    const type = format === 'text' ? rest.trim().toLowerCase() : rest;
    if (type === '' || /\s/.test(type)) return 'TYPE line without exactly one type';
    return { kind: 'type', name, type };
  }
  if (!unitName.test(rest)) return 'invalid unit';
  return { kind: 'unit', name, unit: rest };
}

/** HELP text escapes: text knows `\\` and `\n`; OpenMetrics also `\"`. Undefined for anything else. */
function unescapeHelp(raw: string, format: ExpositionFormat): string | undefined {
  if (!raw.includes('\\')) return raw;
  let result = '';
  for (let index = 0; index < raw.length; index++) {
    const character = raw[index];
    if (character !== '\\') {
      result += character;
      continue;
    }
    const next = raw[++index];
    if (next === '\\') result += '\\';
    else if (next === 'n') result += '\n';
    else if (next === '"' && format === 'openmetrics') result += '"';
    else return undefined;
  }
  return result;
}

export function renderHelp(name: string, help: string, format: ExpositionFormat): string {
  let escaped = help.replaceAll('\\', '\\\\').replaceAll('\n', '\\n');
  if (format === 'openmetrics') escaped = escaped.replaceAll('"', '\\"');
  return `# HELP ${name} ${escaped}\n`;
}
