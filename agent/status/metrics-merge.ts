import { isUtf8 } from 'node:buffer';
import {
  describeOutputFamily,
  implicitType,
  isMetricType,
  type MetricType,
  type OutputFamily,
  type SampleRole,
} from './exposition/families.ts';
import type { ExpositionFormat } from './exposition/format.ts';
import { parseHeaderLine, renderHelp } from './exposition/header-line.ts';
import {
  newSampleScan,
  type SampleScan,
  scanCanonicalSample,
  scanNumber,
} from './exposition/sample-bytes.ts';
import { isFloat, labelValue, parseSampleLine, renderSample } from './exposition/sample-line.ts';
import type { ScrapeSourceType } from './metrics.ts';

/** What a source contributes to the response: original bytes passed through, or rewritten text. */
export type OutputPiece = Buffer | string;

/** A line longer than this is dropped (and counted) instead of being held in memory until its end. */
export const defaultMaximumLineBytes = 128 * 1024;

const newline = 10;
const hash = 35;
const carriageReturn = 13;
const newlineHash = Buffer.from('\n#');
const newlineNewline = Buffer.from('\n\n');
const examplesKept = 5;

/** What the merge left out of one source, for the agent's counters and a log line. */
export interface SourceReport {
  readonly type: ScrapeSourceType;
  readonly name: string;
  malformedLines: number;
  /** The first few reasons, as `line N: reason`. */
  readonly malformedExamples: string[];
  conflictingFamilies: number;
  /** The first few family names left out because an earlier source already used them. */
  readonly conflictExamples: string[];
}

/**
 * One merged exposition being written: the output format and every name already used in it. Sources are
 * added one after the other; a family whose name (or any of its sample names) an earlier family already
 * occupies is left out whole and counted, so the output never declares a family twice nor writes one
 * series name under two families — Prometheus would reject the whole scrape for either.
 */
export class MetricsMerge {
  readonly format: ExpositionFormat;
  readonly #occupied = new Set<string>();
  readonly #sources: MergeSource[] = [];

  constructor(format: ExpositionFormat) {
    this.format = format;
  }

  /**
   * Adds a source. `trusted` sources (Envoy, whose exposition Envoy itself writes) are checked at the level
   * of their `#` lines only and their sample lines are passed through byte for byte; other sources have
   * every line parsed, checked and rewritten in the output format.
   */
  source(options: {
    readonly type: ScrapeSourceType;
    readonly name: string;
    readonly format: ExpositionFormat;
    readonly trusted: boolean;
    readonly maximumLineBytes?: number;
  }): MergeSource {
    const source = new MergeSource(this, options);
    this.#sources.push(source);
    return source;
  }

  get reports(): readonly SourceReport[] {
    return this.#sources.map((source) => source.report);
  }

  /** The end of the exposition: OpenMetrics' `# EOF`, exactly once and last. */
  closing(): string {
    return this.format === 'openmetrics' ? '# EOF\n' : '';
  }

  /** Claims names for a family; false (and nothing claimed) when any of them is taken. */
  occupy(names: readonly string[]): boolean {
    for (const name of names) if (this.#occupied.has(name)) return false;
    for (const name of names) this.#occupied.add(name);
    return true;
  }
}

interface FamilyState {
  readonly name: string;
  type?: MetricType;
  help?: string;
  unit?: string;
  /** Set when the first sample arrives: the family's shape in the output and whether it is written. */
  output?: OutputFamily;
  dropped: boolean;
}

/**
 * One source's bytes on their way into the merged exposition, processed chunk by chunk: only a partial last
 * line is carried between chunks (bounded by the maximum line length), so memory does not grow with the
 * body.
 */
export class MergeSource {
  readonly report: SourceReport;
  readonly #merge: MetricsMerge;
  readonly #input: ExpositionFormat;
  readonly #output: ExpositionFormat;
  readonly #trusted: boolean;
  readonly #maximumLineBytes: number;
  #carry: Buffer[] = [];
  #carryBytes = 0;
  #skippingLongLine = false;
  #lineNumber = 0;
  #family: FamilyState | undefined;
  #finished = false;
  #pieces: OutputPiece[] = [];
  #text = '';
  // Positions of the next `\n#` / `\n\n` in the current chunk, so each chunk is searched once.
  #searchChunk: Buffer | undefined;
  #nextHeader = -1;
  #nextBlank = -1;
  // Lines passed through as they are accumulate into one slice of the chunk until something else is written.
  #runChunk: Buffer | undefined;
  #runStart = 0;
  #runEnd = 0;
  // The last sample name placed, to skip the family lookup while a family's lines follow one another.
  #lastName: Buffer | undefined;
  #lastRole: SampleRole | undefined;
  #lastFamily: FamilyState | undefined;
  readonly #scan: SampleScan = newSampleScan();

  constructor(
    merge: MetricsMerge,
    options: {
      readonly type: ScrapeSourceType;
      readonly name: string;
      readonly format: ExpositionFormat;
      readonly trusted: boolean;
      readonly maximumLineBytes?: number;
    },
  ) {
    this.#merge = merge;
    this.#input = options.format;
    this.#output = merge.format;
    this.#trusted = options.trusted;
    this.#maximumLineBytes = options.maximumLineBytes ?? defaultMaximumLineBytes;
    this.report = {
      type: options.type,
      name: options.name,
      malformedLines: 0,
      malformedExamples: [],
      conflictingFamilies: 0,
      conflictExamples: [],
    };
  }

  /** True once an OpenMetrics source sent `# EOF`: whatever follows is not read. */
  get finished(): boolean {
    return this.#finished;
  }

  /** Processes the next chunk of the body; returns what goes into the response, in order. */
  push(chunk: Buffer): OutputPiece[] {
    this.#pieces = [];
    if (this.#finished || chunk.length === 0) return this.#pieces;
    let position = 0;
    if (this.#carryBytes > 0 || this.#skippingLongLine) {
      const end = chunk.indexOf(newline);
      if (end === -1) {
        this.#appendCarry(chunk, 0, chunk.length);
        return this.#pieces;
      }
      this.#appendCarry(chunk, 0, end);
      this.#completeCarriedLine();
      position = end + 1;
    }
    if (this.#trusted) this.#scanTrusted(chunk, position);
    else this.#scanValidated(chunk, position);
    return this.#flush();
  }

  /** The body ended normally: a last line without a newline still counts. */
  end(): OutputPiece[] {
    this.#pieces = [];
    if (!this.#finished && (this.#carryBytes > 0 || this.#skippingLongLine)) this.#completeCarriedLine();
    this.#family = undefined;
    return this.#flush();
  }

  /** The body was cut short (error, timeout, size limit): a partial last line is dropped. */
  abandon(): void {
    this.#carry = [];
    this.#carryBytes = 0;
    this.#family = undefined;
  }

  #flush(): OutputPiece[] {
    this.#flushRun();
    if (this.#text !== '') {
      this.#pieces.push(this.#text);
      this.#text = '';
    }
    return this.#pieces;
  }

  #flushRun(): void {
    if (this.#runChunk === undefined) return;
    if (this.#text !== '') {
      this.#pieces.push(this.#text);
      this.#text = '';
    }
    this.#pieces.push(this.#runChunk.subarray(this.#runStart, this.#runEnd));
    this.#runChunk = undefined;
  }

  #emitText(text: string): void {
    this.#flushRun();
    this.#text += text;
  }

  #emitBytes(bytes: Buffer): void {
    this.#flushRun();
    if (this.#text !== '') {
      this.#pieces.push(this.#text);
      this.#text = '';
    }
    this.#pieces.push(bytes);
  }

  /** Passes bytes `start` to `end` of the chunk through (extending the current run when adjacent). */
  #passThrough(chunk: Buffer, start: number, end: number): void {
    if (this.#runChunk === chunk && this.#runEnd === start) {
      this.#runEnd = end;
      return;
    }
    this.#flushRun();
    if (this.#text !== '') {
      this.#pieces.push(this.#text);
      this.#text = '';
    }
    this.#runChunk = chunk;
    this.#runStart = start;
    this.#runEnd = end;
  }

  #appendCarry(chunk: Buffer, start: number, end: number): void {
    if (this.#skippingLongLine || end === start) return;
    if (this.#carryBytes + (end - start) > this.#maximumLineBytes) {
      this.#skippingLongLine = true;
      this.#carry = [];
      this.#carryBytes = 0;
      return;
    }
    // Copied: the chunk's memory must not stay pinned by a few bytes of it.
    this.#carry.push(Buffer.from(chunk.subarray(start, end)));
    this.#carryBytes += end - start;
  }

  #completeCarriedLine(): void {
    if (this.#skippingLongLine) {
      this.#lineNumber++;
      this.#malformed(`longer than ${this.#maximumLineBytes} bytes`);
    } else {
      const line = this.#carry.length === 1 ? (this.#carry[0] as Buffer) : Buffer.concat(this.#carry);
      this.#line(line, 0, line.length);
    }
    this.#skippingLongLine = false;
    this.#carry = [];
    this.#carryBytes = 0;
  }

  #scanValidated(chunk: Buffer, from: number): void {
    let position = from;
    // One UTF-8 check for all complete lines of the chunk; line by line only when it fails.
    const lastNewline = chunk.lastIndexOf(newline);
    const utf8 = lastNewline >= position && isUtf8(chunk.subarray(position, lastNewline));
    while (position < chunk.length && !this.#finished) {
      const end = chunk.indexOf(newline, position);
      if (end === -1) {
        this.#appendCarry(chunk, position, chunk.length);
        return;
      }
      const first = chunk[position] as number;
      if (
        !(
          utf8 &&
          first !== hash &&
          end - position <= this.#maximumLineBytes &&
          this.#fastSample(chunk, position, end)
        )
      ) {
        this.#line(chunk, position, end);
      }
      position = end + 1;
    }
  }

  /**
   * A validated sample line that is already in its output form: checked over its bytes and passed through
   * without being decoded or rewritten. False when the line needs the slow path (to be rewritten, or to be
   * reported as malformed).
   */
  #fastSample(chunk: Buffer, start: number, end: number): boolean {
    const scan = this.#scan;
    if (!scanCanonicalSample(chunk, start, end, this.#input, scan)) return false;
    if (scan.hasTimestamp && this.#input !== this.#output) return false;
    let role: SampleRole | undefined;
    const last = this.#lastName;
    if (
      last !== undefined &&
      this.#family === this.#lastFamily &&
      sameName(last, chunk, start, scan.nameEnd)
    ) {
      role = this.#lastRole;
    } else {
      const name = chunk.toString('latin1', start, scan.nameEnd);
      role = this.#placeSample(name);
      this.#lastName = Buffer.from(name, 'latin1');
      this.#lastRole = role;
      this.#lastFamily = this.#family;
    }
    if (
      role === 'bucket' &&
      (scan.leStart === -1 || scanNumber(chunk, scan.leStart, scan.leEnd) !== scan.leEnd)
    ) {
      return false;
    }
    if (
      role === 'quantile' &&
      (scan.quantileStart === -1 ||
        scanNumber(chunk, scan.quantileStart, scan.quantileEnd) !== scan.quantileEnd)
    ) {
      return false;
    }
    if (
      this.#output === 'openmetrics' &&
      chunk[scan.valueStart] === 45 &&
      this.#family?.output?.headerType === 'counter'
    ) {
      return false;
    }
    this.#lineNumber++;
    if (role !== undefined && role !== 'drop') this.#passThrough(chunk, start, end + 1);
    return true;
  }

  /**
   * Trusted sources: `#` lines (and, for OpenMetrics output, blank lines) are handled one by one; the runs of
   * sample lines between them are passed through as slices of the chunk, or skipped when their family is
   * left out.
   */
  #scanTrusted(chunk: Buffer, from: number): void {
    const dropBlankLines = this.#output === 'openmetrics';
    let position = from;
    while (position < chunk.length && !this.#finished) {
      const first = chunk[position] as number;
      if (first === hash || (first === newline && dropBlankLines) || this.#family?.output === undefined) {
        const end = chunk.indexOf(newline, position);
        if (end === -1) {
          this.#appendCarry(chunk, position, chunk.length);
          return;
        }
        this.#line(chunk, position, end);
        position = end + 1;
        continue;
      }
      const boundary = this.#nextBoundary(chunk, position, dropBlankLines);
      let runEnd: number;
      if (boundary !== -1) runEnd = boundary + 1;
      else {
        const last = chunk.lastIndexOf(newline);
        if (last < position) {
          this.#appendCarry(chunk, position, chunk.length);
          return;
        }
        runEnd = last + 1;
      }
      if (!this.#family.dropped) this.#emitBytes(chunk.subarray(position, runEnd));
      position = runEnd;
      if (boundary === -1 && position < chunk.length) {
        this.#appendCarry(chunk, position, chunk.length);
        return;
      }
    }
  }

  /** The `\n` that ends the current run: the one before the next `#` line (or blank line). */
  #nextBoundary(chunk: Buffer, position: number, blankLines: boolean): number {
    if (this.#searchChunk !== chunk) {
      this.#searchChunk = chunk;
      this.#nextHeader = chunk.indexOf(newlineHash, position);
      this.#nextBlank = blankLines ? chunk.indexOf(newlineNewline, position) : -1;
    }
    if (this.#nextHeader !== -1 && this.#nextHeader < position) {
      this.#nextHeader = chunk.indexOf(newlineHash, position);
    }
    if (blankLines && this.#nextBlank !== -1 && this.#nextBlank < position) {
      this.#nextBlank = chunk.indexOf(newlineNewline, position);
    }
    if (this.#nextHeader === -1) return this.#nextBlank;
    if (this.#nextBlank === -1) return this.#nextHeader;
    return Math.min(this.#nextHeader, this.#nextBlank);
  }

  /** One complete line, without its newline. */
  #line(buffer: Buffer, start: number, lineEnd: number): void {
    this.#lineNumber++;
    if (lineEnd - start > this.#maximumLineBytes) {
      this.#malformed(`longer than ${this.#maximumLineBytes} bytes`);
      return;
    }
    let end = lineEnd;
    if (end > start && buffer[end - 1] === carriageReturn) end--;
    if (end === start) {
      // Text allows blank lines (they carry nothing); OpenMetrics does not.
      if (this.#input === 'openmetrics') this.#malformed('blank line');
      return;
    }
    if (buffer[start] === hash) {
      this.#header(buffer.toString('utf8', start, end));
      return;
    }
    if (!isUtf8(buffer.subarray(start, end))) {
      this.#malformed('not UTF-8');
      return;
    }
    const line = buffer.toString('utf8', start, end);
    if (this.#trusted) this.#trustedSample(line);
    else this.#validatedSample(line);
  }

  #header(line: string): void {
    const header = parseHeaderLine(line, this.#input);
    if (typeof header === 'string') {
      this.#malformed(header);
      return;
    }
    if (header.kind === 'comment') return;
    if (header.kind === 'eof') {
      this.#finished = true;
      this.#family = undefined;
      return;
    }
    let family = this.#family;
    if (family === undefined || family.name !== header.name) {
      family = { name: header.name, dropped: false };
      this.#family = family;
    } else if (family.output !== undefined) {
      // Metadata must come before a family's samples; after them it cannot be written any more.
      this.#malformed(`${header.kind.toUpperCase()} line for ${header.name} after its samples`);
      return;
    }
    switch (header.kind) {
      case 'help':
        if (family.help !== undefined) this.#malformed(`second HELP line for ${header.name}`);
        else family.help = header.help;
        break;
      case 'type':
        if (family.type !== undefined) this.#malformed(`second TYPE line for ${header.name}`);
        else if (!isMetricType(this.#input, header.type))
          this.#malformed(`unknown metric type ${header.type}`);
        else family.type = header.type;
        break;
      case 'unit':
        if (family.unit !== undefined) this.#malformed(`second UNIT line for ${header.name}`);
        else if (header.unit !== '' && !header.name.endsWith(`_${header.unit}`)) {
          this.#malformed(`unit ${header.unit} is not a suffix of ${header.name}`);
        } else family.unit = header.unit;
        break;
    }
  }

  /** Settles a family's output shape and claims its names; writes its metadata when it is kept. */
  #declare(family: FamilyState): OutputFamily {
    const output = describeOutputFamily(
      this.#input,
      this.#output,
      family.name,
      family.type ?? implicitType(this.#input),
    );
    family.output = output;
    if (!this.#merge.occupy(output.occupiedNames)) {
      family.dropped = true;
      this.report.conflictingFamilies++;
      if (this.report.conflictExamples.length < examplesKept) this.report.conflictExamples.push(family.name);
      return output;
    }
    if (output.headerName !== undefined && output.headerType !== undefined) {
      if (family.help !== undefined) this.#emitText(renderHelp(output.headerName, family.help, this.#output));
      this.#emitText(`# TYPE ${output.headerName} ${output.headerType}\n`);
      if (family.unit !== undefined && output.keepsUnit)
        this.#emitText(`# UNIT ${output.headerName} ${family.unit}\n`);
    }
    return output;
  }

  /** A trusted sample line handled on its own (the first of a run, or one split across chunks). */
  #trustedSample(line: string): void {
    let family = this.#family;
    if (family === undefined) {
      const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
      if (name === undefined) {
        this.#malformed('invalid metric name');
        return;
      }
      family = { name, dropped: false };
      this.#family = family;
    }
    if (family.output === undefined) this.#declare(family);
    if (!family.dropped) this.#emitText(`${line}\n`);
  }

  #validatedSample(line: string): void {
    const sample = parseSampleLine(line, this.#input);
    if (typeof sample === 'string') {
      this.#malformed(sample);
      return;
    }
    const role = this.#placeSample(sample.name);
    const output = this.#family?.output;
    if (role === undefined || role === 'drop' || output === undefined) return;
    if (role === 'bucket' && !isFloat(labelValue(sample, 'le') ?? '')) {
      this.#malformed(`${sample.name} without a numeric "le" label`);
      return;
    }
    if (role === 'quantile' && !isFloat(labelValue(sample, 'quantile') ?? '')) {
      this.#malformed(`${sample.name} without a numeric "quantile" label`);
      return;
    }
    if (output.headerType === 'counter' && this.#output === 'openmetrics' && sample.value.startsWith('-')) {
      this.#malformed(`negative counter ${sample.name}`);
      return;
    }
    // OpenMetrics allows exemplars on counter totals and histogram buckets only.
    const exemplarAllowed =
      role === 'bucket' || (output.headerType === 'counter' && sample.name.endsWith('_total'));
    if (sample.exemplar !== undefined && !exemplarAllowed) {
      const { exemplar: _left, ...withoutExemplar } = sample;
      this.#emitText(renderSample(withoutExemplar, this.#input, this.#output));
    } else this.#emitText(renderSample(sample, this.#input, this.#output));
  }

  /**
   * Finds the family of a sample name, or starts one (a sample outside the current family starts a family
   * of its own, without metadata), and settles it. Undefined when the family is left out.
   */
  #placeSample(name: string): SampleRole | undefined {
    let family = this.#family;
    let role = family === undefined ? undefined : this.#roleIn(family, name);
    if (family === undefined || role === undefined) {
      family = { name, dropped: false };
      this.#family = family;
      role = this.#roleIn(family, name);
    }
    if (family.output === undefined) this.#declare(family);
    return family.dropped ? undefined : role;
  }

  /** What a sample name does in a family (its shape is settled from its metadata if not yet). */
  #roleIn(family: FamilyState, sampleName: string) {
    const output =
      family.output ??
      describeOutputFamily(this.#input, this.#output, family.name, family.type ?? implicitType(this.#input));
    return output.samples.get(sampleName);
  }

  #malformed(reason: string): void {
    this.report.malformedLines++;
    if (this.report.malformedExamples.length < examplesKept) {
      this.report.malformedExamples.push(`line ${this.#lineNumber}: ${reason}`);
    }
  }
}

function sameName(name: Buffer, chunk: Buffer, start: number, end: number): boolean {
  if (name.length !== end - start) return false;
  for (let index = 0; index < name.length; index++) if (name[index] !== chunk[start + index]) return false;
  return true;
}
