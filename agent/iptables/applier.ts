import { type CommandResult, MissingProgramError, type RunCommand } from './command-runner.ts';
import type { IpFamily } from './ip-ranges.ts';
import type { CaptureRuleOptions } from './options.ts';
import {
  builtInChainsWithOtherRules,
  type ExistingCapture,
  noExistingCapture,
  parseSavedCapture,
  renderRestoreInput,
  withPresentRules,
} from './restore-input.ts';
import {
  buildCapturePlan,
  builtInChains,
  type CapturePlan,
  jumpsToIstioChain,
  type RuleOperation,
} from './rules.ts';

/** Applying or removing the capture failed; the message says which program and why. */
export class CaptureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaptureError';
  }
}

interface FamilyPrograms {
  readonly iptables: string;
  readonly save: string;
  readonly restore: string;
}

const programs: Readonly<Record<IpFamily, FamilyPrograms>> = {
  ipv4: { iptables: 'iptables', save: 'iptables-save', restore: 'iptables-restore' },
  ipv6: { iptables: 'ip6tables', save: 'ip6tables-save', restore: 'ip6tables-restore' },
};

/** What was done for one IP family. */
export interface FamilyOutcome {
  readonly family: IpFamily;
  /** The iptables-restore input written ('' when there was nothing to do). */
  readonly restoreInput: string;
  /** `ip` commands run (TPROXY routing, the IPv6 passthrough address). */
  readonly ipCommands: readonly string[];
  /** Why the family was left alone (cleanup only: e.g. IPv6 disabled in the kernel). */
  readonly skipped?: string;
}

/**
 * Makes the capture exactly the plan of `options` in the current network namespace, for each family:
 * replaces whatever ISTIO_* chains and jumps were there (so re-running never duplicates), in one
 * iptables-restore transaction per family.
 */
export async function applyCapture(
  options: CaptureRuleOptions,
  families: readonly IpFamily[],
  run: RunCommand,
): Promise<FamilyOutcome[]> {
  const outcomes: FamilyOutcome[] = [];
  for (const family of families) {
    const plan = buildCapturePlan(options, family);
    const existing = await readExistingCapture(options, family, run);
    const ipCommands: string[] = [];
    if (plan.passthroughAddressOnLoopback !== null) {
      // IPv6 `lo` only has ::1; Envoy's inbound passthrough needs ::6 to bind to.
      const address = ['-6', 'addr', 'add', plan.passthroughAddressOnLoopback, 'dev', 'lo'];
      await runIp(run, address, /File exists|already assigned/);
      ipCommands.push(`ip ${address.join(' ')}`);
    }
    const restoreInput = renderRestoreInput(plan, existing);
    await restore(run, family, restoreInput);
    ipCommands.push(...(await ensureRoutes(plan, run)));
    outcomes.push({ family, restoreInput, ipCommands });
  }
  return outcomes;
}

/**
 * Removes every ISTIO_* chain and every rule Istio adds to built-in chains, for IPv4 and IPv6, plus TPROXY's
 * policy routing. `options` identifies Istio's rules in built-in chains that do not jump to an ISTIO_*
 * chain (interface exclusions, TPROXY marks), as Istio's own cleanup does.
 */
export async function removeCapture(options: CaptureRuleOptions, run: RunCommand): Promise<FamilyOutcome[]> {
  const outcomes: FamilyOutcome[] = [];
  for (const family of ['ipv4', 'ipv6'] as const) {
    let existing: ExistingCapture;
    try {
      existing = await readExistingCapture(options, family, run);
    } catch (error) {
      // A kernel without IPv6 has no IPv6 capture to remove.
      if (family === 'ipv6' && error instanceof CaptureError) {
        outcomes.push({ family, restoreInput: '', ipCommands: [], skipped: error.message });
        continue;
      }
      throw error;
    }
    const restoreInput = renderRestoreInput(undefined, existing);
    if (restoreInput !== '') await restore(run, family, restoreInput);
    const ipCommands = await removeRoutes(options, family, run);
    outcomes.push({ family, restoreInput, ipCommands });
  }
  return outcomes;
}

/** The plan `--dry-run` prints: what would be written to a namespace without any capture yet. */
export function dryRunInput(
  options: CaptureRuleOptions,
  family: IpFamily,
): { plan: CapturePlan; restoreInput: string } {
  const plan = buildCapturePlan(options, family);
  return { plan, restoreInput: renderRestoreInput(plan, noExistingCapture) };
}

async function readExistingCapture(
  options: CaptureRuleOptions,
  family: IpFamily,
  run: RunCommand,
): Promise<ExistingCapture> {
  const { iptables, save } = programs[family];
  const saved = await run(save, []);
  if (saved.exitCode !== 0) {
    throw new CaptureError(
      `${save} failed (exit ${saved.exitCode}): ${saved.stderr.trim() || saved.stdout.trim()}`,
    );
  }
  const existing = parseSavedCapture(saved.stdout);
  // Istio's rules in built-in chains that do not jump to an ISTIO_* chain cannot be recognised in
  // iptables-save's normalised text, so ask iptables whether each (of either mode) is present.
  const occupied = builtInChainsWithOtherRules(saved.stdout);
  const present: RuleOperation[] = [];
  for (const rule of builtInRulesOfEitherMode(options, family)) {
    if (!occupied.has(`${rule.table} ${rule.chain}`)) continue;
    const check = await run(iptables, ['-w', '-t', rule.table, '-C', rule.chain, ...rule.arguments]);
    if (check.exitCode === 0) present.push(rule);
  }
  return withPresentRules(existing, present);
}

function builtInRulesOfEitherMode(options: CaptureRuleOptions, family: IpFamily): RuleOperation[] {
  const seen = new Set<string>();
  const rules: RuleOperation[] = [];
  for (const interceptionMode of ['REDIRECT', 'TPROXY'] as const) {
    for (const rule of buildCapturePlan({ ...options, interceptionMode }, family).rules) {
      if (!builtInChains.has(rule.chain) || jumpsToIstioChain(rule.arguments)) continue;
      const key = [rule.table, rule.chain, ...rule.arguments].join(' ');
      if (seen.has(key)) continue;
      seen.add(key);
      rules.push({ table: rule.table, chain: rule.chain, arguments: rule.arguments });
    }
  }
  return rules;
}

async function restore(run: RunCommand, family: IpFamily, input: string): Promise<void> {
  const { restore: program } = programs[family];
  const result = await run(program, ['--noflush', '--wait'], input);
  if (result.exitCode !== 0) {
    throw new CaptureError(
      `${program} --noflush failed (exit ${result.exitCode}), nothing was changed in the failing table: ${result.stderr.trim()}\ninput was:\n${input}`,
    );
  }
}

async function ensureRoutes(plan: CapturePlan, run: RunCommand): Promise<string[]> {
  if (plan.routes === null) return [];
  const done: string[] = [];
  const { rule, route } = plan.routes;
  // `ip rule add` happily adds duplicates: add only when no such rule is listed yet.
  const selector = rule.slice(rule.indexOf('add') + 1);
  const listed = await runIp(run, [...rule.slice(0, rule.indexOf('add')), 'show', ...selector]);
  if (listed.trim() === '') {
    await runIp(run, rule);
    done.push(`ip ${rule.join(' ')}`);
  }
  await runIp(run, route, /File exists/);
  done.push(`ip ${route.join(' ')}`);
  return done;
}

async function removeRoutes(
  options: CaptureRuleOptions,
  family: IpFamily,
  run: RunCommand,
): Promise<string[]> {
  const ipFamily = family === 'ipv4' ? 'inet' : 'inet6';
  const selector = ['fwmark', options.tproxyMark, 'lookup', options.tproxyRouteTable];
  let listed: CommandResult;
  try {
    listed = await run('ip', ['-f', ipFamily, 'rule', 'show', ...selector]);
  } catch (error) {
    // Without iproute2 there can be no TPROXY routing to remove.
    if (error instanceof MissingProgramError) return [];
    throw error;
  }
  if (listed.exitCode !== 0 || listed.stdout.trim() === '') return [];
  const done: string[] = [];
  for (const _ of listed.stdout.trim().split('\n')) {
    await runIp(run, ['-f', ipFamily, 'rule', 'del', ...selector]);
    done.push(`ip -f ${ipFamily} rule del ${selector.join(' ')}`);
  }
  const flush = ['-f', ipFamily, 'route', 'flush', 'table', options.tproxyRouteTable];
  await runIp(run, flush, /does not exist/);
  done.push(`ip ${flush.join(' ')}`);
  return done;
}

async function runIp(run: RunCommand, argumentList: readonly string[], tolerated?: RegExp): Promise<string> {
  const result = await run('ip', argumentList);
  if (result.exitCode !== 0 && !(tolerated?.test(result.stderr) ?? false)) {
    throw new CaptureError(
      `ip ${argumentList.join(' ')} failed (exit ${result.exitCode}): ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}
