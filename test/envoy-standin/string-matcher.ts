import { ConfigurationError } from './bootstrap-load.ts';

/** `envoy.type.matcher.v3.StringMatcher` compiled to a predicate. */
export type StringMatcher = (value: string) => boolean;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export function parseStringMatcher(value: unknown, where: string): StringMatcher {
  if (!isObject(value)) throw new ConfigurationError(`${where}: expected a StringMatcher`);
  const ignoreCase = value.ignore_case === true;
  const fold = (text: string) => (ignoreCase ? text.toLowerCase() : text);
  if (typeof value.exact === 'string') {
    const expected = fold(value.exact);
    return (candidate) => fold(candidate) === expected;
  }
  if (typeof value.prefix === 'string') {
    const prefix = fold(value.prefix);
    return (candidate) => fold(candidate).startsWith(prefix);
  }
  if (typeof value.suffix === 'string') {
    const suffix = fold(value.suffix);
    return (candidate) => fold(candidate).endsWith(suffix);
  }
  if (typeof value.contains === 'string') {
    const part = fold(value.contains);
    return (candidate) => fold(candidate).includes(part);
  }
  if (isObject(value.safe_regex) && typeof value.safe_regex.regex === 'string') {
    let expression: RegExp;
    try {
      // RE2 full match; the common syntax (no lookaround, no backreferences) means the same in JavaScript.
      expression = new RegExp(`^(?:${value.safe_regex.regex})$`);
    } catch (error) {
      throw new ConfigurationError(
        `${where}: invalid regex '${value.safe_regex.regex}': ${(error as Error).message}`,
      );
    }
    return (candidate) => expression.test(candidate);
  }
  throw new ConfigurationError(
    `${where}: a StringMatcher needs exact, prefix, suffix, contains or safe_regex`,
  );
}
