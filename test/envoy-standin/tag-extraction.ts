import type { TagSpecifier } from './bootstrap-model.ts';

/** A tag: name and value, as Envoy extracts them from a stat name. */
export type Tag = readonly [name: string, value: string];

export interface ExtractedName {
  /** The stat name with every matched "remove" group cut out (the Prometheus family name). */
  readonly extractedName: string;
  readonly tags: readonly Tag[];
}

/**
 * Envoy's default tag extractors (source/common/config/well_known_names.cc), the ones that match stats the
 * stand-in produces. Envoy runs these with std::regex (ECMAScript), so lookaheads mean the same here.
 */
export const defaultTagSpecifiers: readonly TagSpecifier[] = [
  { tagName: 'envoy.response_code', regex: '_rq(_(\\d{3}))$' },
  { tagName: 'envoy.response_code_class', regex: '_rq_(\\d)xx$' },
  { tagName: 'envoy.tcp_prefix', regex: '^tcp\\.((.*?)\\.)\\w+?$' },
  { tagName: 'envoy.cluster_name', regex: '^cluster\\.((.*?)\\.)' },
  { tagName: 'envoy.http_conn_manager_prefix', regex: '^(?:|listener(?=\\.).*?\\.)http\\.((.*?)\\.)' },
  {
    tagName: 'envoy.listener_address',
    regex: '^listener\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)',
  },
  { tagName: 'envoy.virtual_host', regex: '^vhost\\.((.*?)\\.)' },
];

const posixClasses: Record<string, string> = {
  digit: '0-9',
  alpha: 'a-zA-Z',
  alnum: 'a-zA-Z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  xdigit: '0-9a-fA-F',
  space: '\\s',
  word: '\\w',
  punct: '!-\\/:-@\\[-`{-~',
};

/** std::regex accepts POSIX classes inside brackets (`[_.[:digit:]]`); JavaScript does not. */
export function translatePosixClasses(pattern: string): string {
  return pattern.replace(/\[:([a-z]+):\]/g, (whole, name: string) => posixClasses[name] ?? whole);
}

interface CompiledExtractor {
  readonly name: string;
  readonly regex?: RegExp;
  readonly fixedValue?: string;
}

/**
 * Envoy's TagProducer: configured `stats_tags` first, then the defaults whose names were not configured
 * (unless `use_all_default_tags: false`), plus fixed tags (`fixed_value`, `--stats-tag`) on every stat.
 * Each regex runs on the full name; its first group is removed from the name, its second (else its first)
 * is the tag value.
 */
export class TagProducer {
  readonly #extractors: CompiledExtractor[] = [];

  constructor(
    specifiers: readonly TagSpecifier[],
    useAllDefaultTags: boolean,
    fixedTags: readonly Tag[] = [],
  ) {
    const names = new Set<string>();
    for (const specifier of specifiers) {
      names.add(specifier.tagName);
      this.#extractors.push(this.#compile(specifier));
    }
    if (useAllDefaultTags) {
      for (const specifier of defaultTagSpecifiers) {
        if (!names.has(specifier.tagName)) this.#extractors.push(this.#compile(specifier));
      }
    }
    for (const [name, value] of fixedTags) this.#extractors.push({ name, fixedValue: value });
  }

  #compile(specifier: TagSpecifier): CompiledExtractor {
    if (specifier.fixedValue !== undefined)
      return { name: specifier.tagName, fixedValue: specifier.fixedValue };
    return { name: specifier.tagName, regex: new RegExp(translatePosixClasses(specifier.regex ?? ''), 'd') };
  }

  produce(name: string): ExtractedName {
    const tags: Tag[] = [];
    const removed: Array<[number, number]> = [];
    for (const extractor of this.#extractors) {
      if (extractor.fixedValue !== undefined) {
        tags.push([extractor.name, extractor.fixedValue]);
        continue;
      }
      const match = extractor.regex?.exec(name);
      if (!match?.indices) continue;
      const removeRange = match.indices[1];
      const valueIndex = match.length > 2 ? 2 : 1;
      const value = match[valueIndex];
      if (removeRange === undefined || value === undefined) continue;
      tags.push([extractor.name, value]);
      removed.push([removeRange[0], removeRange[1]]);
    }
    if (removed.length === 0) return { extractedName: name, tags };
    let extractedName = '';
    for (let index = 0; index < name.length; index++) {
      if (!removed.some(([start, end]) => index >= start && index < end)) extractedName += name[index];
    }
    return { extractedName, tags };
  }
}
