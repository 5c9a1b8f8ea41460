// The README's quick start: one expirable on the embedded standalone node.
// Run it with `node quickstart.mjs` in a project where `npm install expirable-store` ran.
import { defineExpirables, expirable, ok, fail } from 'expirable-store';

// Stands in for an OAuth or API call: counts its calls, hands out a token valid for 60 s.
let calls = 0;
async function fetchTokenFromProvider() {
  calls += 1;
  return { token: `token-${calls}`, expiresAt: Date.now() + 60_000 };
}

const Expirables = defineExpirables({
  apiToken: expirable({
    fetch: async () => {
      const t = await fetchTokenFromProvider();
      return t ? ok(t.token, t.expiresAt) : fail('provider refused'); // or throw
    },
  }),
});

const first = await Expirables.apiToken(); // { ok: true, value: 'token-1', expiresAt: <ms> }
if (!first.ok) throw first.error;
const again = await Expirables.apiTokenOrThrow(); // 'token-1': served from memory, no second call
console.log(`apiToken = ${again}, valid for ${Math.round((first.expiresAt - Date.now()) / 1000)} s, provider calls: ${calls}`);

await Expirables.clear('apiToken'); // the next read calls the provider again
console.log(`after clear: ${await Expirables.apiTokenOrThrow()}, provider calls: ${calls}`);

await Expirables.close(); // stops this store's timers; the process can exit
