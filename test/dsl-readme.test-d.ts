// The README's examples compile as written and infer the documented types.
import { describe, expectTypeOf, test } from 'vitest';
import { defineExpirables, expirable, fail, ok, startNode, type ExpirableResult } from '../src/index.js';

declare const GitHubOAuth: { fetchAccessToken(): Promise<{ token: string; expiresAt: number } | undefined> };
declare const DatadogAgent: { fetchLocalToken(): Promise<{ token: string; expiresAt: number }> };
declare const FX: { fetchUsdKrw(): Promise<{ rate: number; validUntil: number }> };
declare function loadConfig(): { featureFlags: string[] };
declare function rotate(tenantId: string, secret: string): Promise<string>;

describe('README examples', () => {
  test('the seed example in TypeScript', async () => {
    const node = await startNode({ name: 'billing-1', port: 4370, cookie: 'secret', seeds: ['10.0.0.5:4370'] });
    const Expirables = defineExpirables(
      {
        // Cluster-scoped, lazy refresh
        githubAccessToken: expirable({
          fetch: async () => {
            const t = await GitHubOAuth.fetchAccessToken();
            return t ? ok(t.token, t.expiresAt) : fail('github refused');
          },
          scope: 'cluster',
          refresh: 'lazy',
        }),
        // Local-scoped, lazy refresh
        datadogAgentToken: expirable({
          fetch: async () => {
            const t = await DatadogAgent.fetchLocalToken();
            return ok(t.token, t.expiresAt);
          },
          scope: 'local',
        }),
        // Cluster-scoped, eager refresh 30 seconds before expiry
        fxRateUsdKrw: expirable({
          fetch: async () => {
            const fx = await FX.fetchUsdKrw();
            return ok(fx.rate, fx.validUntil);
          },
          refresh: { eager: { beforeExpiry: 30_000 } },
        }),
        // Never expires (cached until cleared)
        staticConfig: expirable({ fetch: async () => ok(loadConfig(), Infinity) }),
        // Keyed and stateful
        tenantApiKey: expirable({
          keyed: true,
          requireInitialState: true,
          fetch: async (tenantId: string, state: { secret: string }) => ok(await rotate(tenantId, state.secret), Date.now() + 86_400_000, state),
        }),
      },
      { node, namespace: 'MyApp.Expirables' },
    );

    expectTypeOf(await Expirables.githubAccessToken()).toEqualTypeOf<ExpirableResult<string>>();
    expectTypeOf(await Expirables.githubAccessTokenOrThrow()).toEqualTypeOf<string>();
    expectTypeOf(await Expirables.fetchOrThrow('fxRateUsdKrw')).toEqualTypeOf<number>();
    expectTypeOf(await Expirables.staticConfigOrThrow()).toEqualTypeOf<{ featureFlags: string[] }>();
    expectTypeOf(await Expirables.datadogAgentTokenOrThrow()).toEqualTypeOf<string>();
    await Expirables.putState('tenantApiKey', 't-123', { secret: 's' });
    expectTypeOf(await Expirables.tenantApiKeyOrThrow('t-123')).toEqualTypeOf<string>();
    await Expirables.updateState('tenantApiKey', 't-123', (s) => ({ secret: `${s?.secret}!` }));
    await Expirables.clear('tenantApiKey', 't-123');
    await Expirables.clear('githubAccessToken');
    await Expirables.clearAll();
    expectTypeOf(Expirables.replicas('githubAccessToken')).toEqualTypeOf<string[]>();
    expectTypeOf(Expirables.stats().githubAccessToken.hits).toEqualTypeOf<number>();
  });
});
