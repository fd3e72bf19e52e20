import { isLabelCharacter, isLabelStart, isNameCharacter, isNameStart } from './characters.ts';
import type { ExpositionFormat } from './format.ts';

/** A sample line, read and checked, ready to be written in either format. */
export interface SampleLine {
  readonly name: string;
  /** Label pairs with values still escaped (both formats escape `\\`, `\"` and `\n` the same way). */
  readonly labels: readonly (readonly [name: string, escapedValue: string])[];
  readonly value: string;
  readonly timestamp?: string;
  /** OpenMetrics only: the exemplar after ` # `, already in canonical form; undefined when absent or invalid. */
  readonly exemplar?: string;
}

const floatPattern =
  /^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)$|^[nN][aA][nN]$/;
const integerPattern = /^-?\d+$/;
const secondsPattern = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
/** OpenMetrics limits an exemplar's label names and values to 128 characters together. */
const exemplarLabelCharacters = 128;

export function isFloat(text: string): boolean {
  return floatPattern.test(text);
}

const isBlank = (code: number) => code === 32 || code === 9;

class Scanner {
  readonly text: string;
  index = 0;
  constructor(text: string) {
    this.text = text;
  }
  peek(): number {
    return this.text.charCodeAt(this.index);
  }
  get done(): boolean {
    return this.index >= this.text.length;
  }
  skipBlanks(): number {
    const start = this.index;
    while (isBlank(this.peek())) this.index++;
    return this.index - start;
  }
  token(): string {
    const start = this.index;
    while (!this.done && !isBlank(this.peek())) this.index++;
    return this.text.slice(start, this.index);
  }
}

type Labels = [string, string][];

/** Reads `{name="value",…}` at the scanner (which is on `{`). Returns the reason when invalid. */
function readLabels(scanner: Scanner, format: ExpositionFormat): Labels | string {
  scanner.index++; // {
  const labels: Labels = [];
  const lenient = format === 'text';
  for (;;) {
    if (lenient) scanner.skipBlanks();
    if (scanner.peek() === 125 /* } */) {
      scanner.index++;
      return labels;
    }
    const nameStart = scanner.index;
    if (!isLabelStart(scanner.peek())) return 'invalid label name';
    while (isLabelCharacter(scanner.peek())) scanner.index++;
    const name = scanner.text.slice(nameStart, scanner.index);
    if (name === '__name__') return 'label name __name__ is reserved';
    for (const [existing] of labels) if (existing === name) return `duplicate label ${name}`;
    if (lenient) scanner.skipBlanks();
    if (scanner.peek() !== 61 /* = */) return `label ${name} without "="`;
    scanner.index++;
    if (lenient) scanner.skipBlanks();
    if (scanner.peek() !== 34 /* " */) return `label ${name} without a quoted value`;
    scanner.index++;
    const valueStart = scanner.index;
    for (;;) {
      if (scanner.done) return `unterminated value of label ${name}`;
      const code = scanner.peek();
      if (code === 34) break;
      if (code === 92 /* \ */) {
        const next = scanner.text.charCodeAt(scanner.index + 1);
        if (next !== 92 && next !== 34 && next !== 110 /* n */) return `invalid escape in label ${name}`;
        scanner.index += 2;
      } else scanner.index++;
    }
    labels.push([name, scanner.text.slice(valueStart, scanner.index)]);
    scanner.index++; // closing quote
    if (lenient) scanner.skipBlanks();
    if (scanner.peek() === 44 /* , */) {
      scanner.index++;
      continue;
    }
    if (scanner.peek() !== 125) return 'expected "," or "}" after a label';
  }
}

function renderLabels(labels: readonly (readonly [string, string])[]): string {
  if (labels.length === 0) return '';
  let text = '{';
  for (let index = 0; index < labels.length; index++) {
    const label = labels[index] as readonly [string, string];
    text += `${index === 0 ? '' : ','}${label[0]}="${label[1]}"`;
  }
  return `${text}}`;
}

/** `# {labels} value [timestamp]` after a sample (OpenMetrics); undefined when it is not a valid exemplar. */
function readExemplar(scanner: Scanner): string | undefined {
  if (scanner.peek() !== 35 /* # */) return undefined;
  scanner.index++;
  if (scanner.skipBlanks() === 0 || scanner.peek() !== 123 /* { */) return undefined;
  const labels = readLabels(scanner, 'openmetrics');
  if (typeof labels === 'string') return undefined;
  let characters = 0;
  for (const [name, value] of labels) characters += name.length + value.length;
  if (characters > exemplarLabelCharacters) return undefined;
  if (scanner.skipBlanks() === 0) return undefined;
  const value = scanner.token();
  if (!floatPattern.test(value)) return undefined;
  let rendered = `${renderLabels(labels) || '{}'} ${value}`;
  if (scanner.skipBlanks() > 0 && !scanner.done) {
    const timestamp = scanner.token();
    if (!secondsPattern.test(timestamp)) return undefined;
    rendered += ` ${timestamp}`;
  }
  scanner.skipBlanks();
  return scanner.done ? rendered : undefined;
}

/**
 * Reads a sample line (`name{labels} value [timestamp]`, and in OpenMetrics an optional exemplar). Returns
 * the reason as a string when the line is not valid in `format`.
 */
export function parseSampleLine(line: string, format: ExpositionFormat): SampleLine | string {
  const scanner = new Scanner(line);
  if (!isNameStart(scanner.peek())) return 'invalid metric name';
  while (isNameCharacter(scanner.peek())) scanner.index++;
  const name = line.slice(0, scanner.index);
  // Text allows blanks between the name and its labels.
  let blanks = format === 'text' ? scanner.skipBlanks() : 0;
  let labels: Labels = [];
  if (scanner.peek() === 123 /* { */) {
    const read = readLabels(scanner, format);
    if (typeof read === 'string') return read;
    labels = read;
    blanks = 0;
  }
  if (blanks + scanner.skipBlanks() === 0) return 'expected a blank before the value';
  const value = scanner.token();
  if (!floatPattern.test(value)) return `invalid value ${JSON.stringify(value.slice(0, 40))}`;
  scanner.skipBlanks();
  let timestamp: string | undefined;
  if (!scanner.done && scanner.peek() !== 35) {
    timestamp = scanner.token();
    if (!(format === 'text' ? integerPattern : secondsPattern).test(timestamp)) return 'invalid timestamp';
    scanner.skipBlanks();
  }
  let exemplar: string | undefined;
  if (!scanner.done) {
    if (format === 'text' || scanner.peek() !== 35) return 'unexpected text after the value';
    exemplar = readExemplar(scanner);
  }
  return {
    name,
    labels,
    value,
    ...(timestamp !== undefined ? { timestamp } : {}),
    ...(exemplar !== undefined ? { exemplar } : {}),
  };
}

/** The unescaped value of label `name`, if present. */
export function labelValue(sample: SampleLine, name: string): string | undefined {
  for (const [label, value] of sample.labels) {
    if (label === name)
      return value.replace(/\\(.)/g, (_, escaped: string) => (escaped === 'n' ? '\n' : escaped));
  }
  return undefined;
}

/** Text timestamps are integer milliseconds, OpenMetrics timestamps are seconds. */
function convertTimestamp(timestamp: string, from: ExpositionFormat, to: ExpositionFormat): string {
  if (from === to) return timestamp;
  if (from === 'openmetrics') return String(Math.round(Number(timestamp) * 1000));
  const negative = timestamp.startsWith('-');
  const digits = (negative ? timestamp.slice(1) : timestamp).padStart(4, '0');
  const seconds = `${digits.slice(0, -3)}.${digits.slice(-3)}`.replace(/\.?0+$/, '');
  return `${negative ? '-' : ''}${seconds}`;
}

/** Writes a sample in `to` format (canonical spacing; exemplars only in OpenMetrics). */
export function renderSample(sample: SampleLine, from: ExpositionFormat, to: ExpositionFormat): string {
  let line = `${sample.name}${renderLabels(sample.labels)} ${sample.value}`;
  if (sample.timestamp !== undefined) line += ` ${convertTimestamp(sample.timestamp, from, to)}`;
  if (sample.exemplar !== undefined && to === 'openmetrics') line += ` # ${sample.exemplar}`;
  return `${line}\n`;
}
