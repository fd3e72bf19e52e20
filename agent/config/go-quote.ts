/**
 * Go's `strconv.Unquote` for the values Kubernetes writes into downward-API files (`%q` formatting):
 * a double-quoted string with Go escapes, or a back-quoted raw string. Returns undefined on bad syntax.
 */
export function unquoteGoString(quoted: string): string | undefined {
  if (quoted.length < 2) return undefined;
  const quote = quoted[0];
  if (quoted[quoted.length - 1] !== quote) return undefined;
  const body = quoted.slice(1, -1);
  if (quote === '`') return body.includes('`') ? undefined : body.replaceAll('\r', '');
  if (quote !== '"') return undefined;

  let result = '';
  for (let index = 0; index < body.length; index++) {
    const character = body[index] as string;
    if (character === '"' || character === '\n') return undefined;
    if (character !== '\\') {
      result += character;
      continue;
    }
    const escapeLetter = body[++index];
    switch (escapeLetter) {
      case 'a':
        result += '\x07';
        break;
      case 'b':
        result += '\b';
        break;
      case 'f':
        result += '\f';
        break;
      case 'n':
        result += '\n';
        break;
      case 'r':
        result += '\r';
        break;
      case 't':
        result += '\t';
        break;
      case 'v':
        result += '\v';
        break;
      case '\\':
        result += '\\';
        break;
      case '"':
        result += '"';
        break;
      case 'x':
      case 'u':
      case 'U': {
        const width = escapeLetter === 'x' ? 2 : escapeLetter === 'u' ? 4 : 8;
        const hex = body.slice(index + 1, index + 1 + width);
        if (!new RegExp(`^[0-9a-fA-F]{${width}}$`).test(hex)) return undefined;
        const codePoint = Number.parseInt(hex, 16);
        index += width;
        if (escapeLetter === 'x') {
          // \x is a byte in Go; bytes of a UTF-8 sequence are decoded together below.
          result += `\u0000${String.fromCharCode(codePoint)}`;
        } else {
          if (codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return undefined;
          result += String.fromCodePoint(codePoint);
        }
        break;
      }
      default: {
        if (escapeLetter !== undefined && /[0-7]/.test(escapeLetter)) {
          const octal = body.slice(index, index + 3);
          if (!/^[0-7]{3}$/.test(octal)) return undefined;
          const byte = Number.parseInt(octal, 8);
          if (byte > 255) return undefined;
          result += `\u0000${String.fromCharCode(byte)}`;
          index += 2;
          break;
        }
        return undefined;
      }
    }
  }
  return result.includes('\u0000') ? decodeEscapedBytes(result) : result;
}

/** Decodes runs of byte escapes (marked with a NUL before each byte) as UTF-8, as Go strings hold bytes. */
function decodeEscapedBytes(marked: string): string {
  let output = '';
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length > 0) output += Buffer.from(bytes).toString('utf8');
    bytes = [];
  };
  for (let index = 0; index < marked.length; index++) {
    if (marked[index] === '\u0000' && index + 1 < marked.length) {
      bytes.push(marked.charCodeAt(++index));
    } else {
      flush();
      output += marked[index];
    }
  }
  flush();
  return output;
}
