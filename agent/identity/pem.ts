const pemBlock = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?\r?\n-----END \1-----/g;

/** The PEM blocks of one type in `text`, each normalised to end with a newline. */
export function splitPemBlocks(text: string, type = 'CERTIFICATE'): string[] {
  return [...text.matchAll(pemBlock)].filter((match) => match[1] === type).map((match) => `${match[0]}\n`);
}

/** Joins PEM blocks the way Istio concatenates a chain: each block on its own lines. */
export function joinPemBlocks(blocks: readonly string[]): string {
  return blocks.map((block) => (block.endsWith('\n') ? block : `${block}\n`)).join('');
}
