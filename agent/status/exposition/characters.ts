/** Character classes of the Prometheus exposition formats, over UTF-16 or byte codes (ASCII only). */

/** A metric name starts with `[a-zA-Z_:]`. */
export const isNameStart = (code: number) =>
  (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || code === 95 || code === 58;
/** A metric name continues with `[a-zA-Z0-9_:]`. */
export const isNameCharacter = (code: number) => isNameStart(code) || isDigit(code);
/** A label name starts with `[a-zA-Z_]`. */
export const isLabelStart = (code: number) =>
  (code >= 97 && code <= 122) || (code >= 65 && code <= 90) || code === 95;
/** A label name continues with `[a-zA-Z0-9_]`. */
export const isLabelCharacter = (code: number) => isLabelStart(code) || isDigit(code);
export const isDigit = (code: number) => code >= 48 && code <= 57;
