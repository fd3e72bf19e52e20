import { ConfigError } from '../config/errors.ts';

/**
 * A problem with one Kubernetes object, found while injecting it. It names the field (as a path such as
 * `spec.template.spec.containers[0].ports`) and what was expected; the manifest reader adds the document.
 */
export class InjectionError extends Error {
  /** Where in the object, such as `spec.containers[0].ports`; empty for the object itself. */
  readonly field: string;
  readonly problem: string;

  constructor(field: string, problem: string) {
    super(field === '' ? problem : `${field}: ${problem}`);
    this.name = 'InjectionError';
    this.field = field;
    this.problem = problem;
  }

  /** The same problem, located from further out (`spec.template` + `spec.containers`). */
  within(prefix: string): InjectionError {
    return new InjectionError(joinField(prefix, this.field), this.problem);
  }
}

/** Joins field paths the way Kubernetes prints them: `spec.template` + `[0].name` → `spec.template[0].name`. */
export function joinField(parent: string, child: string): string {
  if (parent === '') return child;
  if (child === '') return parent;
  return child.startsWith('[') ? `${parent}${child}` : `${parent}.${child}`;
}

/**
 * A problem with one document of a manifest, numbered from 1 in the order of the input. A configuration
 * error to the CLI: one line on stderr and exit code 255.
 */
export class ManifestError extends ConfigError {
  readonly documentNumber: number;

  constructor(source: string, documentNumber: number, problem: string) {
    super(source, problem);
    this.name = 'ManifestError';
    this.documentNumber = documentNumber;
  }
}

/** How a value looks in an error message: short, and with its JSON type visible. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
