/**
 * A small JSON Schema (2020-12) checker for the subset proto/schema.json uses: type, properties,
 * required, additionalProperties: false, items, enum, const, oneOf, minimum, maximum, minLength,
 * maxLength, pattern, and local $ref. Returns the list of problems (empty when valid). Any other keyword
 * is an error, so the schema cannot silently use something this checker ignores.
 */
type Schema = Record<string, unknown>;

const KNOWN = new Set([
  '$schema',
  '$id',
  'title',
  'description',
  '$defs',
  '$ref',
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'const',
  'oneOf',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
]);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

export function validate(root: Schema, schema: Schema, value: unknown, at = '$'): string[] {
  for (const key of Object.keys(schema)) if (!KNOWN.has(key)) return [`${at}: schema keyword ${key} is not supported by the checker`];
  if (typeof schema['$ref'] === 'string') {
    const name = schema['$ref'].replace(/^#\/\$defs\//, '');
    const target = (root['$defs'] as Record<string, Schema>)[name];
    if (target === undefined) return [`${at}: unknown $ref ${schema['$ref']}`];
    return validate(root, target, value, at);
  }
  const problems: string[] = [];
  if (schema['type'] !== undefined) {
    const types = ([] as string[]).concat(schema['type'] as string | string[]);
    const actual = typeOf(value);
    if (!types.includes(actual) && !(actual === 'integer' && types.includes('number'))) return [`${at}: expected ${types.join('|')}, got ${actual}`];
  }
  if (schema['const'] !== undefined && value !== schema['const']) problems.push(`${at}: expected ${JSON.stringify(schema['const'])}`);
  if (Array.isArray(schema['enum']) && !(schema['enum'] as unknown[]).includes(value)) problems.push(`${at}: ${JSON.stringify(value)} not in enum`);
  if (Array.isArray(schema['oneOf'])) {
    const matches = (schema['oneOf'] as Schema[]).filter((option) => validate(root, option, value, at).length === 0).length;
    if (matches !== 1) problems.push(`${at}: matches ${matches} of oneOf's ${(schema['oneOf'] as unknown[]).length} options, not exactly 1`);
  }
  if (typeof value === 'number') {
    if (typeof schema['minimum'] === 'number' && value < schema['minimum']) problems.push(`${at}: below ${schema['minimum']}`);
    if (typeof schema['maximum'] === 'number' && value > schema['maximum']) problems.push(`${at}: above ${schema['maximum']}`);
  }
  if (typeof value === 'string') {
    if (typeof schema['minLength'] === 'number' && value.length < schema['minLength']) problems.push(`${at}: shorter than ${schema['minLength']}`);
    if (typeof schema['maxLength'] === 'number' && value.length > schema['maxLength']) problems.push(`${at}: longer than ${schema['maxLength']}`);
    if (typeof schema['pattern'] === 'string' && !new RegExp(schema['pattern'], 'u').test(value)) problems.push(`${at}: does not match ${schema['pattern']}`);
  }
  if (Array.isArray(value) && schema['items'] !== undefined) {
    value.forEach((item, i) => problems.push(...validate(root, schema['items'] as Schema, item, `${at}[${i}]`)));
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    const properties = (schema['properties'] ?? {}) as Record<string, Schema>;
    for (const key of (schema['required'] ?? []) as string[]) if (!Object.hasOwn(object, key)) problems.push(`${at}.${key}: required`);
    for (const [key, item] of Object.entries(object)) {
      if (Object.hasOwn(properties, key)) problems.push(...validate(root, properties[key]!, item, `${at}.${key}`));
      else if (schema['additionalProperties'] === false) problems.push(`${at}.${key}: not allowed`);
    }
  }
  return problems;
}
