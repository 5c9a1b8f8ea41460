// Type tests of the DSL: names, value, key and state types are inferred from the
// definitions; unknown names and wrong key types do not compile.
import { describe, expectTypeOf, test } from 'vitest';
import { defineExpirables } from '../src/dsl/define.js';
import { expirable } from '../src/dsl/definition.js';
import { fail, ok, type ExpirableResult } from '../src/store/result.js';
import type { ExpirableStats } from '../src/dsl/types.js';

const Expirables = defineExpirables(
  {
    githubAccessToken: expirable({
      fetch: async () => (Math.random() > 0.5 ? ok('token', Date.now() + 1000) : fail('refused')),
    }),
    fxRate: expirable({ fetch: () => ok(1320.5, Date.now() + 1000), refresh: { eager: { beforeExpiry: 100 } } }),
    tenantApiKey: expirable({
      keyed: true,
      requireInitialState: true,
      fetch: async (tenantId: string, state: { secret: string }) => ok({ key: `${tenantId}:${state.secret}` }, Date.now() + 1000, state),
    }),
    counter: expirable({ fetch: async (n: number | undefined) => ok(n ?? 0, Infinity, (n ?? 0) + 1) }),
    byPoint: expirable({ keyed: true, fetch: async (p: { x: number; y: number }) => ok(p.x + p.y, Infinity) }),
  },
  { namespace: 'types' },
);

describe('defineExpirables types', () => {
  test('named functions return the value type', () => {
    expectTypeOf(Expirables.githubAccessToken).toEqualTypeOf<() => Promise<ExpirableResult<string>>>();
    expectTypeOf(Expirables.githubAccessTokenOrThrow).toEqualTypeOf<() => Promise<string>>();
    expectTypeOf(Expirables.fxRateOrThrow()).resolves.toEqualTypeOf<number>();
    expectTypeOf(Expirables.counterOrThrow()).resolves.toEqualTypeOf<number>();
  });

  test('keyed functions take the key type', () => {
    expectTypeOf(Expirables.tenantApiKey).parameters.toEqualTypeOf<[key: string]>();
    expectTypeOf(Expirables.tenantApiKeyOrThrow('t')).resolves.toEqualTypeOf<{ key: string }>();
    expectTypeOf(Expirables.byPoint).parameters.toEqualTypeOf<[key: { x: number; y: number }]>();
    // @ts-expect-error a number is not a tenant id
    void Expirables.tenantApiKey(42);
    // @ts-expect-error a keyed expirable needs its key
    void Expirables.tenantApiKey();
    // @ts-expect-error an unkeyed expirable takes no key
    void Expirables.githubAccessToken('x');
  });

  test('a keyed fetch with an unannotated key takes plain data only', () => {
    // Pins: an unannotated key was `unknown`, so symbols and functions compiled (and threw at run time).
    const E = defineExpirables({ any: expirable({ keyed: true, fetch: async (key) => ok(String(key), Infinity) }) });
    void E.any('k');
    void E.any({ a: [1, 'x', null, { b: true }] });
    // @ts-expect-error a symbol is no key
    void E.any(Symbol('s'));
    // @ts-expect-error a function is no key
    void E.fetch('any', () => 1);
    // @ts-expect-error a bigint is no key
    void E.anyOrThrow(10n);
  });

  test('generic methods are typed by name', () => {
    expectTypeOf(Expirables.fetch('githubAccessToken')).resolves.toEqualTypeOf<ExpirableResult<string>>();
    expectTypeOf(Expirables.fetchOrThrow('tenantApiKey', 't')).resolves.toEqualTypeOf<{ key: string }>();
    expectTypeOf(Expirables.replicas('fxRate')).toEqualTypeOf<string[]>();
    expectTypeOf(Expirables.stats().githubAccessToken).toEqualTypeOf<ExpirableStats>();
    // @ts-expect-error unknown name
    void Expirables.fetch('gitlabAccessToken');
    // @ts-expect-error unknown name
    void Expirables.clear('nope');
    // @ts-expect-error wrong key type
    void Expirables.fetch('tenantApiKey', 1);
    // clear takes an optional key for keyed expirables
    expectTypeOf(Expirables.clear('tenantApiKey')).resolves.toBeVoid();
    expectTypeOf(Expirables.clear('tenantApiKey', 't')).resolves.toBeVoid();
  });

  test('state types', () => {
    expectTypeOf(Expirables.putState('tenantApiKey', 't', { secret: 's' })).resolves.toBeVoid();
    // @ts-expect-error wrong state type
    void Expirables.putState('tenantApiKey', 't', { secret: 1 });
    void Expirables.updateState('tenantApiKey', 't', (s) => {
      expectTypeOf(s).toEqualTypeOf<{ secret: string } | undefined>();
      return { secret: `${s?.secret ?? ''}!` };
    });
    expectTypeOf(Expirables.putState('counter', 3)).resolves.toBeVoid();
    // @ts-expect-error wrong state type
    void Expirables.putState('counter', 'three');
  });

  test('unknown members do not exist', () => {
    // @ts-expect-error no such expirable
    void Expirables.gitlabAccessToken;
    // @ts-expect-error no such generated function
    void Expirables.fxRateOrElse;
  });

  test('reserved names do not compile', () => {
    // @ts-expect-error `fetch` is a generic method
    defineExpirables({ fetch: expirable({ fetch: () => ok(1, Infinity) }) });
    // @ts-expect-error `then` would make the object a thenable
    defineExpirables({ then: expirable({ fetch: () => ok(1, Infinity) }) });
    // Pins: `aOrThrow` next to `a` compiled and only threw at define time.
    // @ts-expect-error `aOrThrow` collides with the generated function of `a`
    defineExpirables({ a: expirable({ fetch: () => ok(1, Infinity) }), aOrThrow: expirable({ fetch: () => ok(1, Infinity) }) });
    // alone, `aOrThrow` is a name like any other
    expectTypeOf(defineExpirables({ aOrThrow: expirable({ fetch: () => ok(1, Infinity) }) }).aOrThrowOrThrow()).resolves.toEqualTypeOf<number>();
  });

  test('a fetch without state handling does not compile with a state it cannot take', () => {
    // @ts-expect-error state starts undefined: without requireInitialState the fetch must accept undefined
    expirable({ fetch: async (s: { n: number }) => ok(s.n, Infinity, s) });
    // @ts-expect-error fetch must return ok(...) or fail(...)
    expirable({ fetch: async () => 42 });
  });
});
