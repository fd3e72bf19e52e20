/**
 * A minimal protobuf wire-format reader: the stand-in needs a handful of fields from the xDS resources it
 * receives (names, addresses, certificates), and reading them directly spares loading Envoy's Cluster,
 * Listener and Secret protos at start-up. Throws on malformed input, as unpacking the Any would fail.
 */

export type WireValue = bigint | Uint8Array;

/** Field number → values in order (varints and fixed as bigint, length-delimited as bytes). */
export type WireMessage = ReadonlyMap<number, readonly WireValue[]>;

export class WireFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WireFormatError';
  }
}

function readVarint(bytes: Uint8Array, start: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (let index = start; index < bytes.length && shift < 70n; index++) {
    const byte = bytes[index] ?? 0;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, index + 1];
    shift += 7n;
  }
  throw new WireFormatError('truncated varint');
}

export function decodeMessage(bytes: Uint8Array): WireMessage {
  const fields = new Map<number, WireValue[]>();
  let offset = 0;
  while (offset < bytes.length) {
    const [key, afterKey] = readVarint(bytes, offset);
    const field = Number(key >> 3n);
    const wireType = Number(key & 7n);
    if (field === 0) throw new WireFormatError('field number 0');
    let value: WireValue;
    switch (wireType) {
      case 0: {
        [value, offset] = readVarint(bytes, afterKey);
        break;
      }
      case 1:
      case 5: {
        const size = wireType === 1 ? 8 : 4;
        if (afterKey + size > bytes.length) throw new WireFormatError('truncated fixed-width field');
        let fixed = 0n;
        for (let index = size - 1; index >= 0; index--)
          fixed = (fixed << 8n) | BigInt(bytes[afterKey + index] ?? 0);
        value = fixed;
        offset = afterKey + size;
        break;
      }
      case 2: {
        const [length, afterLength] = readVarint(bytes, afterKey);
        const end = afterLength + Number(length);
        if (end > bytes.length)
          throw new WireFormatError(`length-delimited field ${field} overruns the message`);
        value = bytes.subarray(afterLength, end);
        offset = end;
        break;
      }
      default:
        throw new WireFormatError(`unsupported wire type ${wireType} for field ${field}`);
    }
    const list = fields.get(field);
    if (list) list.push(value);
    else fields.set(field, [value]);
  }
  return fields;
}

/** The last value of a singular field (protobuf: last one wins). */
function last(message: WireMessage, field: number): WireValue | undefined {
  const values = message.get(field);
  return values?.[values.length - 1];
}

export function bytesField(message: WireMessage, field: number): Uint8Array | undefined {
  const value = last(message, field);
  if (value === undefined) return undefined;
  if (typeof value === 'bigint') throw new WireFormatError(`field ${field} is not length-delimited`);
  return value;
}

export function stringField(message: WireMessage, field: number): string {
  const bytes = bytesField(message, field);
  return bytes === undefined ? '' : new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

export function messageField(message: WireMessage, field: number): WireMessage | undefined {
  const bytes = bytesField(message, field);
  return bytes === undefined ? undefined : decodeMessage(bytes);
}

export function integerField(message: WireMessage, field: number): number {
  const value = last(message, field);
  if (value === undefined) return 0;
  if (typeof value !== 'bigint') throw new WireFormatError(`field ${field} is not a varint`);
  return Number(value);
}
