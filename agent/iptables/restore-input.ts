import {
  builtInChains,
  type CapturePlan,
  chainsOf,
  istioChainPrefix,
  type RuleOperation,
  type TableName,
  tableOrder,
} from './rules.ts';

/** The capture already present in a network namespace, as far as re-running or cleanup must undo it. */
export interface ExistingCapture {
  /** ISTIO_* chains present, per table. */
  readonly chains: Readonly<Partial<Record<TableName, readonly string[]>>>;
  /**
   * Rules in built-in chains to delete, each as `CHAIN match… -j target` (iptables-save's form without
   * `-A`): the jumps to ISTIO_* chains, and Istio's other rules there that were found to be present.
   */
  readonly builtInRules: Readonly<Partial<Record<TableName, readonly string[]>>>;
}

export const noExistingCapture: ExistingCapture = { chains: {}, builtInRules: {} };

/**
 * The iptables-restore input (for `--noflush`) that makes the capture exactly `plan`, whatever was there:
 * declaring a chain (`:ISTIO_X - [0:0]`) creates it or empties it, Istio's old rules in built-in chains are
 * deleted, chains no longer wanted are removed, then the plan's rules are written. With `plan` undefined
 * it removes the capture. One COMMIT per table, so each table changes atomically or not at all.
 */
export function renderRestoreInput(plan: CapturePlan | undefined, existing: ExistingCapture): string {
  const lines: string[] = [];
  for (const table of tableOrder) {
    const planned = plan === undefined ? [] : chainsOf(plan, table);
    const present = existing.chains[table] ?? [];
    const stale = existing.builtInRules[table] ?? [];
    const rules = plan?.rules.filter((rule) => rule.table === table) ?? [];
    if (planned.length === 0 && present.length === 0 && stale.length === 0 && rules.length === 0) continue;
    lines.push(`* ${table}`);
    for (const name of [...planned, ...present.filter((name) => !planned.includes(name))]) {
      lines.push(`:${name} - [0:0]`);
    }
    for (const rule of stale) lines.push(`-D ${rule}`);
    for (const name of present) if (!planned.includes(name)) lines.push(`-X ${name}`);
    for (const rule of rules) lines.push(renderRule(rule));
    lines.push('COMMIT');
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

export function renderRule(rule: RuleOperation): string {
  const operation = rule.position === undefined ? `-A ${rule.chain}` : `-I ${rule.chain} ${rule.position}`;
  return [operation, ...rule.arguments].join(' ');
}

/**
 * Reads `iptables-save` output: the ISTIO_* chains of each table and the rules of built-in chains that
 * jump to them.
 */
export function parseSavedCapture(saved: string): ExistingCapture {
  const chains: Partial<Record<TableName, string[]>> = {};
  const builtInRules: Partial<Record<TableName, string[]>> = {};
  const add = (lists: Partial<Record<TableName, string[]>>, table: TableName, item: string) => {
    lists[table] = [...(lists[table] ?? []), item];
  };
  let table: TableName | undefined;
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) {
      const name = line.slice(1).trim();
      table = (tableOrder as readonly string[]).includes(name) ? (name as TableName) : undefined;
      continue;
    }
    if (table === undefined) continue;
    if (line.startsWith(`:${istioChainPrefix}`)) {
      const name = line.slice(1).split(' ')[0] as string;
      add(chains, table, name);
    } else if (line.startsWith('-A ')) {
      const rule = line.slice(3).trim();
      const chainName = rule.split(' ')[0] as string;
      if (builtInChains.has(chainName) && / -[jg] ISTIO_\S+/.test(rule)) add(builtInRules, table, rule);
    }
  }
  return { chains, builtInRules };
}

/**
 * Built-in chains (`table chain`) holding rules that do not jump to an ISTIO_* chain: only there can Istio's
 * other built-in rules be present, which spares `iptables -C` calls in a fresh pod.
 */
export function builtInChainsWithOtherRules(saved: string): Set<string> {
  const chains = new Set<string>();
  let table = '';
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim();
    else if (line.startsWith('-A ')) {
      const [, chainName = ''] = line.split(' ');
      if (builtInChains.has(chainName) && !/ -[jg] ISTIO_\S+/.test(line)) chains.add(`${table} ${chainName}`);
    }
  }
  return chains;
}

/** Adds rules found present by `iptables -C` to an existing capture. */
export function withPresentRules(
  existing: ExistingCapture,
  present: readonly RuleOperation[],
): ExistingCapture {
  const builtInRules: Partial<Record<TableName, readonly string[]>> = { ...existing.builtInRules };
  for (const rule of present) {
    builtInRules[rule.table] = [
      ...(builtInRules[rule.table] ?? []),
      [rule.chain, ...rule.arguments].join(' '),
    ];
  }
  return { chains: existing.chains, builtInRules };
}
