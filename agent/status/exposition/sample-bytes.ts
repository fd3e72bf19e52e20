import { isDigit, isLabelCharacter, isLabelStart, isNameCharacter, isNameStart } from './characters.ts';
import type { ExpositionFormat } from './format.ts';

/** What {@link scanCanonicalSample} found on a line it accepted. */
export interface SampleScan {
  nameEnd: number;
  hasTimestamp: boolean;
  valueStart: number;
  /** Positions of the `le` and `quantile` label values (between the quotes); -1 when absent. */
  leStart: number;
  leEnd: number;
  quantileStart: number;
  quantileEnd: number;
}

export function newSampleScan(): SampleScan {
  return {
    nameEnd: 0,
    hasTimestamp: false,
    valueStart: 0,
    leStart: -1,
    leEnd: -1,
    quantileStart: -1,
    quantileEnd: -1,
  };
}

const maximumLabels = 32;
const labelNameStarts = new Int32Array(maximumLabels);
const labelNameEnds = new Int32Array(maximumLabels);

/** `[+-]?(digits[.digits*]|.digits)([eE][+-]?digits)?`, `[+-]Inf` or `NaN` over bytes; the end index or -1. */
export function scanNumber(buffer: Buffer, start: number, end: number): number {
  let index = start;
  let code = buffer[index];
  if (code === 43 || code === 45) code = buffer[++index];
  if (code === 73 /* I */ && index + 3 <= end && buffer[index + 1] === 110 && buffer[index + 2] === 102) {
    return index + 3;
  }
  if (code === 78 /* N */ && index === start && buffer[index + 1] === 97 && buffer[index + 2] === 78)
    return index + 3;
  const digitsStart = index;
  while (index < end && isDigit(buffer[index] as number)) index++;
  let digits = index - digitsStart;
  if (buffer[index] === 46 /* . */ && index < end) {
    index++;
    const fractionStart = index;
    while (index < end && isDigit(buffer[index] as number)) index++;
    digits += index - fractionStart;
  }
  if (digits === 0) return -1;
  if ((buffer[index] === 101 || buffer[index] === 69) && index < end) {
    index++;
    if (buffer[index] === 43 || buffer[index] === 45) index++;
    const exponentStart = index;
    while (index < end && isDigit(buffer[index] as number)) index++;
    if (index === exponentStart) return -1;
  }
  return index;
}

/** `-?digits` (text timestamps, milliseconds); the end index or -1. */
function scanInteger(buffer: Buffer, start: number, end: number): number {
  let index = start;
  if (buffer[index] === 45) index++;
  const digitsStart = index;
  while (index < end && isDigit(buffer[index] as number)) index++;
  return index === digitsStart ? -1 : index;
}

function sameBytes(buffer: Buffer, aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  if (aEnd - aStart !== bEnd - bStart) return false;
  for (let offset = 0; offset < aEnd - aStart; offset++) {
    if (buffer[aStart + offset] !== buffer[bStart + offset]) return false;
  }
  return true;
}

/**
 * The fast path for sample lines: accepts a line (bytes `start` to `end`, without its newline) only when it
 * is valid and already written exactly as the merge would write it — `name{l="v",…} value[ timestamp]`
 * with single spaces, no empty braces, no exemplar — so that it can be passed through byte for byte.
 * Anything else (including every invalid line) returns false and goes the slow way, which rewrites the line
 * or says why it is malformed. Label values must have been checked to be UTF-8 by the caller.
 */
export function scanCanonicalSample(
  buffer: Buffer,
  start: number,
  end: number,
  format: ExpositionFormat,
  scan: SampleScan,
): boolean {
  let index = start;
  if (index >= end || !isNameStart(buffer[index] as number)) return false;
  index++;
  while (index < end && isNameCharacter(buffer[index] as number)) index++;
  scan.nameEnd = index;
  scan.leStart = -1;
  scan.quantileStart = -1;
  if (buffer[index] === 123 /* { */) {
    index++;
    let labels = 0;
    for (;;) {
      const nameStart = index;
      if (index >= end || !isLabelStart(buffer[index] as number)) return false;
      index++;
      while (index < end && isLabelCharacter(buffer[index] as number)) index++;
      const nameEnd = index;
      if (buffer[index] !== 61 /* = */ || buffer[index + 1] !== 34 /* " */) return false;
      if (labels === maximumLabels) return false;
      for (let previous = 0; previous < labels; previous++) {
        if (
          sameBytes(
            buffer,
            labelNameStarts[previous] as number,
            labelNameEnds[previous] as number,
            nameStart,
            nameEnd,
          )
        ) {
          return false;
        }
      }
      labelNameStarts[labels] = nameStart;
      labelNameEnds[labels] = nameEnd;
      labels++;
      index += 2;
      const valueStart = index;
      for (;;) {
        if (index >= end) return false;
        const code = buffer[index] as number;
        if (code === 34) break;
        if (code === 92 /* \ */) {
          const next = buffer[index + 1];
          if (next !== 92 && next !== 34 && next !== 110) return false;
          index += 2;
        } else index++;
      }
      const length = nameEnd - nameStart;
      if (length === 2 && buffer[nameStart] === 108 && buffer[nameStart + 1] === 101) {
        scan.leStart = valueStart;
        scan.leEnd = index;
      } else if (length === 8 && buffer.toString('latin1', nameStart, nameEnd) === 'quantile') {
        scan.quantileStart = valueStart;
        scan.quantileEnd = index;
      } else if (length === 8 && buffer.toString('latin1', nameStart, nameEnd) === '__name__') return false;
      index++; // closing quote
      const separator = buffer[index];
      if (separator === 125 /* } */) {
        index++;
        break;
      }
      if (separator !== 44 /* , */) return false;
      index++;
    }
  }
  if (buffer[index] !== 32 || index >= end) return false;
  index++;
  scan.valueStart = index;
  index = scanNumber(buffer, index, end);
  if (index === -1) return false;
  scan.hasTimestamp = false;
  if (index === end) return true;
  if (buffer[index] !== 32) return false;
  index++;
  const timestampEnd = format === 'text' ? scanInteger(buffer, index, end) : scanNumber(buffer, index, end);
  if (timestampEnd !== end) return false;
  scan.hasTimestamp = true;
  return true;
}
