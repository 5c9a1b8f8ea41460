// Processes that cannot dial each other share one token through Redis: whichever asks first
// fetches it, the others read it from the value Redis published (no mesh, no port opened).
//
//   REDIS_URL=redis://127.0.0.1:6379 node --import tsx examples/redis/app.ts a
//   REDIS_URL=redis://127.0.0.1:6379 node --import tsx examples/redis/app.ts b
//
// Each prints the token it reads and how many times it called the provider itself, then
// closes the store and exits; the second one, started later, finds the first one's token.
// Needs `npm install @redis/client` (an optional peer dependency). In an application, import
// from 'expirable-store' instead of the source tree.
import { defineExpirables, expirable, ok, redisBackend } from '../../src/index.js';

const name = process.argv[2] ?? `app-${process.pid}`;
let calls = 0;
const Expirables = defineExpirables(
  {
    apiToken: expirable({
      fetch: async () => {
        calls += 1; // stands in for an OAuth or API call
        return ok(`token fetched by ${name}`, Date.now() + 60_000);
      },
    }),
  },
  {
    namespace: 'examples.redis',
    backend: redisBackend({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', name }),
  },
);

const r = await Expirables.apiToken();
if (r.ok) console.log(`[${name}] apiToken = ${r.value}; provider calls in this process: ${calls}`);
// Redis unreachable (within connectTimeout), or the provider failed: a typed reason, no hang.
else console.log(`[${name}] no token: ${r.error.reason}: ${r.error.message}`);

// The token stays in Redis until it expires: a process started later reads it from there.
await Expirables.close(); // stops timers and subscriptions, quits the connection it opened
process.exitCode = r.ok ? 0 : 1;
