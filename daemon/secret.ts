import { inspect } from 'node:util';

/**
 * A secret value (token, code, verifier) that never prints: `String()`, JSON and `util.inspect` all
 * give "[redacted]". Call `reveal()` at the one place the value is sent.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  equals(other: string): boolean {
    return this.#value === other;
  }

  toString(): string {
    return '[redacted]';
  }

  toJSON(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return '[redacted]';
  }
}
