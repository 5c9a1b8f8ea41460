// Define-time validation and the shape of the typed object (no fetch runs here).
import { describe, expect, it } from 'vitest';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import { fail, isOutcome, ok } from '../src/store/result.js';
import { InvalidDefinitionError, InvalidOptionError } from '../src/errors.js';

const good = () => expirable({ fetch: async () => ok(1, Infinity) });
let ns = 0;
const namespace = () => `dsl-define-${process.pid}-${++ns}`;

function definitionError(fn: () => unknown): InvalidDefinitionError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidDefinitionError);
    return err as InvalidDefinitionError;
  }
  throw new Error('expected an InvalidDefinitionError');
}

describe('ok / fail', () => {
  it('ok carries value, expiry and optional next state', () => {
    const a = ok('v', 123);
    expect(a).toMatchObject({ ok: true, value: 'v', expiresAt: 123, hasNextState: false });
    expect(isOutcome(a)).toBe(true);
    const b = ok('v', Infinity, { n: 1 });
    expect(b).toMatchObject({ ok: true, expiresAt: Infinity, nextState: { n: 1 }, hasNextState: true });
    expect(ok(1, 1, undefined).hasNextState).toBe(true);
  });

  it('fail carries its reason; look-alikes are not outcomes', () => {
    expect(fail('nope')).toMatchObject({ ok: false, reason: 'nope' });
    expect(isOutcome(fail())).toBe(true);
    expect(isOutcome({ ok: true, value: 1, expiresAt: 1 })).toBe(false);
    expect(isOutcome(null)).toBe(false);
  });
});

describe('define-time errors name the expirable and the option', () => {
  it('missing fetch', () => {
    const err = definitionError(() => defineExpirables({ token: expirable({} as never) }, { namespace: namespace() }));
    expect(err.expirable).toBe('token');
    expect(err.option).toBe('fetch');
    expect(err.message).toMatch(/token.*fetch/);
  });

  it('unknown scope', () => {
    const err = definitionError(() =>
      defineExpirables({ token: expirable({ fetch: async () => ok(1, 1), scope: 'planet' as never }) }, { namespace: namespace() }),
    );
    expect([err.expirable, err.option]).toEqual(['token', 'scope']);
    expect(err.message).toMatch(/planet/);
  });

  it.each([[-1], [Number.NaN], ['30s'], [Infinity]])('bad beforeExpiry %s', (bad) => {
    const err = definitionError(() =>
      defineExpirables({ fx: expirable({ fetch: async () => ok(1, 1), refresh: { eager: { beforeExpiry: bad as number } } }) }, { namespace: namespace() }),
    );
    expect([err.expirable, err.option]).toEqual(['fx', 'refresh.eager.beforeExpiry']);
  });

  it.each([
    [{ eager: { beforeExpiry: 10, beforeExpiryMs: 5 } }, 'refresh.eager.beforeExpiryMs'],
    [{ eager: { beforeExpiry: 10 }, lazy: true }, 'refresh.lazy'],
  ])('an unknown option inside refresh is refused, named: %o', (refresh, option) => {
    // Pins: unknown keys inside refresh / eager were silently ignored.
    const err = definitionError(() => defineExpirables({ fx: expirable({ fetch: async () => ok(1, 1), refresh: refresh as never }) }, { namespace: namespace() }));
    expect([err.expirable, err.option]).toEqual(['fx', option]);
  });

  it('bad refresh shape', () => {
    const err = definitionError(() =>
      defineExpirables({ fx: expirable({ fetch: async () => ok(1, 1), refresh: 'eager' as never }) }, { namespace: namespace() }),
    );
    expect(err.option).toBe('refresh');
  });

  it('bad fetchTimeout and unknown options', () => {
    expect(
      definitionError(() => defineExpirables({ a: expirable({ fetch: async () => ok(1, 1), fetchTimeout: 0 }) }, { namespace: namespace() })).option,
    ).toBe('fetchTimeout');
    expect(
      definitionError(() => defineExpirables({ a: expirable({ fetch: async () => ok(1, 1), refrsh: 'lazy' } as never) }, { namespace: namespace() }))
        .option,
    ).toBe('refrsh');
  });

  it.each(['fetch', 'fetchOrThrow', 'clear', 'clearAll', 'replicas', 'stats', 'putState', 'updateState', 'close', 'then', 'constructor', 'toString', '__proto__'])(
    'name colliding with a method: %s',
    (name) => {
      const defs = Object.defineProperty({}, name, { value: good(), enumerable: true });
      const err = definitionError(() => defineExpirables(defs as never, { namespace: namespace() }));
      expect([err.expirable, err.option]).toEqual([name, 'name']);
    },
  );

  it('name colliding with a generated OrThrow function', () => {
    // Also a compile error (dsl-types.test-d.ts); here the define-time check, for untyped callers.
    const err = definitionError(() => defineExpirables({ token: good(), tokenOrThrow: good() } as never, { namespace: namespace() }));
    expect(err.expirable).toBe('tokenOrThrow');
    expect(err.message).toMatch(/generated method tokenOrThrow/);
  });

  it('requireInitialState accepts a state parameter with a default value, or a rest parameter', () => {
    // Pins: the check used fetch.length, which counts neither, and refused both.
    expect(() =>
      defineExpirables(
        {
          k: expirable({ keyed: true, requireInitialState: true, fetch: async (_k: string, state: { s: string } = { s: '' }) => ok(state.s, 1) }),
          u: expirable({ requireInitialState: true, fetch: async (...args: [{ s: string }]) => ok(args[0].s, 1) }),
        },
        { namespace: namespace() },
      ),
    ).not.toThrow();
  });

  it('maxKeys on an unkeyed expirable, or not a positive integer', () => {
    expect(
      definitionError(() => defineExpirables({ u: expirable({ fetch: async () => ok(1, 1), maxKeys: 3 } as never) }, { namespace: namespace() })).option,
    ).toBe('maxKeys');
    expect(
      definitionError(() =>
        defineExpirables({ k: expirable({ keyed: true, maxKeys: 0, fetch: async (_k: string) => ok(1, 1) }) }, { namespace: namespace() }),
      ).option,
    ).toBe('maxKeys');
  });

  it('something that is not a definition', () => {
    const err = definitionError(() => defineExpirables({ token: { fetch: async () => ok(1, 1) } } as never, { namespace: namespace() }));
    expect([err.expirable, err.option]).toEqual(['token', 'definition']);
  });

  it('bad store options', () => {
    expect(() => defineExpirables({ a: good() }, { namespace: 'has space' })).toThrow(InvalidOptionError);
    expect(() => defineExpirables({ a: good() }, { node: {} as never })).toThrow(InvalidOptionError);
    expect(() => defineExpirables({ a: good() }, { nmespace: 'x' } as never)).toThrow(InvalidOptionError);
  });

  it('a namespace runs once per node', async () => {
    const n = namespace();
    const first = defineExpirables({ a: good() }, { namespace: n });
    expect(() => defineExpirables({ a: good() }, { namespace: n })).toThrow(/namespace/);
    await first.close();
    const second = defineExpirables({ a: good() }, { namespace: n });
    await second.close();
  });
});

describe('the typed object', () => {
  it('has a named function and an OrThrow per expirable, and the generic methods', async () => {
    const E = defineExpirables({ token: good(), fx: good() }, { namespace: namespace() });
    for (const m of ['token', 'tokenOrThrow', 'fx', 'fxOrThrow', 'fetch', 'fetchOrThrow', 'clear', 'clearAll', 'replicas', 'stats', 'putState', 'updateState', 'close']) {
      expect(typeof (E as unknown as Record<string, unknown>)[m]).toBe('function');
    }
    // Not a thenable: awaiting it gives the object itself.
    expect(await Promise.resolve(E)).toBe(E);
    await E.close();
  });

  it('an unknown name at run time rejects with InvalidOptionError', async () => {
    const E = defineExpirables({ token: good() }, { namespace: namespace() });
    const loose = E as unknown as { fetch(name: string): Promise<unknown>; replicas(name: string): string[] };
    await expect(loose.fetch('nope')).rejects.toBeInstanceOf(InvalidOptionError);
    expect(() => loose.replicas('nope')).toThrow(InvalidOptionError);
    await E.close();
  });
});
