import { isDeepStrictEqual } from 'node:util';
import {
  type Document,
  isAlias,
  isCollection,
  isMap,
  isScalar,
  isSeq,
  type Pair,
  parseAllDocuments,
  visit,
} from 'yaml';
import { ManifestError } from './errors.ts';

/** One document of a multi-document manifest, kept as a YAML syntax tree so that writing it back keeps its comments. */
export interface ManifestDocument {
  /** Counted from 1, in the order of the input. */
  readonly number: number;
  readonly document: Document;
  /** The document as plain JSON values; null for an empty document. */
  readonly value: unknown;
}

/**
 * Kubernetes reads manifests as YAML 1.1 (`yes`, `on` and `0755` are not strings there); reading them the
 * same way keeps injection's view of a manifest the API server's, and makes the writer quote such strings.
 */
const yamlVersion = '1.1';

/**
 * Splits a manifest into its documents. Malformed YAML (including duplicate keys, which Kubernetes would
 * silently resolve) is a {@link ManifestError} naming the document, line and column.
 */
export function readManifestDocuments(source: string, text: string): ManifestDocument[] {
  const documents = parseAllDocuments(text, { version: yamlVersion, prettyErrors: true, uniqueKeys: true });
  return documents.map((document, index) => {
    const number = index + 1;
    const error = document.errors[0];
    if (error !== undefined) {
      throw new ManifestError(
        `${source}: document ${number}`,
        number,
        `invalid YAML: ${error.message.split('\n')[0]?.replace(/:$/, '')}`,
      );
    }
    let value: unknown;
    try {
      value = document.toJS({ maxAliasCount: 1000 });
    } catch (cause) {
      throw new ManifestError(
        `${source}: document ${number}`,
        number,
        `cannot be read: ${cause instanceof Error ? cause.message : String(cause)}`,
      );
    }
    return { number, document, value: value ?? null };
  });
}

/**
 * Writes documents back as one manifest, in their order, separated by `---`. Empty documents are dropped;
 * everything else keeps its comments, key order and scalar styles. Sequences are written the way kubectl
 * and istioctl write them (not indented under their key).
 */
export function renderManifestDocuments(documents: readonly ManifestDocument[]): string {
  const texts: string[] = [];
  for (const { document } of documents) {
    // The separator is written between documents, once.
    if (document.directives && !document.directives.yaml.explicit) document.directives.docStart = null;
    const text = document.toString({ lineWidth: 0, indentSeq: false });
    if (document.contents === null && text.replace(/^---/, '').trim() === '') continue;
    texts.push(text.endsWith('\n') ? text : `${text}\n`);
  }
  return texts.join('---\n');
}

/**
 * Makes a document's syntax tree hold `value`, changing only what differs: unchanged mappings, list items
 * and scalars keep their nodes, hence their comments and styles. List items are matched by `name` (as
 * Kubernetes merges containers, volumes and variables), other items by position.
 */
export function updateDocument(document: Document, value: unknown): void {
  const fromJson = isCollection(document.contents) && document.contents.flow === true;
  document.contents = reconcile(document, document.contents, value) as Document['contents'];
  // JSON (`kubectl get -o json`) comes out as YAML, as istioctl writes it, rather than as one long line.
  if (fromJson) {
    visit(document, {
      Collection: (_, node) => {
        node.flow = false;
      },
      Scalar: (_, node) => {
        if (node.type === 'QUOTE_DOUBLE') delete node.type;
      },
    });
  }
}

/** New nodes never become YAML anchors and aliases, even when two values are the same object. */
const createOptions = { aliasDuplicateObjects: false } as const;

function reconcile(document: Document, node: unknown, value: unknown): unknown {
  if (isAlias(node)) {
    return isDeepStrictEqual(node.resolve(document)?.toJS(document), value)
      ? node
      : document.createNode(value, createOptions);
  }
  if (isPlainObject(value)) {
    if (!isMap(node)) return document.createNode(value, createOptions);
    const pairs = new Map<string, Pair>();
    for (const pair of node.items) pairs.set(keyOf(pair), pair);
    node.items = Object.entries(value).map(([key, child]) => {
      const pair = pairs.get(key);
      if (pair === undefined) return document.createPair(key, child, createOptions);
      pair.value = reconcile(document, pair.value, child);
      return pair;
    });
    return node;
  }
  if (Array.isArray(value)) {
    if (!isSeq(node)) return document.createNode(value, createOptions);
    const used = new Set<number>();
    node.items = value.map((child, index) => {
      const match = matchingItem(node.items, child, index, used);
      if (match < 0) return document.createNode(child, createOptions);
      used.add(match);
      return reconcile(document, node.items[match], child);
    });
    return node;
  }
  if (isScalar(node) && node.value === value) return node;
  return document.createNode(value, createOptions);
}

function matchingItem(
  items: readonly unknown[],
  value: unknown,
  index: number,
  used: ReadonlySet<number>,
): number {
  const name = isPlainObject(value) && typeof value.name === 'string' ? value.name : undefined;
  if (name !== undefined) {
    const byName = items.findIndex(
      (item, candidate) =>
        !used.has(candidate) && isMap(item) && scalarValue(item.get('name', true)) === name,
    );
    if (byName >= 0) return byName;
  }
  const item = items[index];
  if (item === undefined || used.has(index)) return -1;
  const sameShape =
    (isPlainObject(value) && isMap(item)) ||
    (Array.isArray(value) && isSeq(item)) ||
    (!isPlainObject(value) && !Array.isArray(value) && (isScalar(item) || isAlias(item)));
  if (!sameShape) return -1;
  // A named item never takes the place of another name's node (its comments would move with it).
  if (name !== undefined && isMap(item) && scalarValue(item.get('name', true)) !== undefined) return -1;
  return index;
}

function keyOf(pair: Pair): string {
  return isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
}

function scalarValue(node: unknown): unknown {
  return isScalar(node) ? node.value : undefined;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
