// The package as users install it: `npm run build`, `npm pack`, then `npm install <tarball>`
// into a fresh project in a temp folder, used from child processes the way users use it
// (ESM import, CommonJS require, TypeScript, and the README's examples run as written).
// Everything lives in one temp folder, removed afterwards. npm needs only the registry
// (and its cache: `--prefer-offline`).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NODE = process.execPath; // the Node line under test runs the user's scripts

// npm exports its own settings to the scripts it runs (`npm test`); a child npm would read
// them as its configuration (`npm_config_local_prefix` would install into this repository).
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_(config_local_prefix|config_prefix|package_|lifecycle_|command)/i.test(k) || k === 'INIT_CWD') continue;
    env[k] = v;
  }
  return env;
}

let tmp = '';
let app = '';
let packed: { path: string }[] = [];
let manifest: Record<string, unknown> = {};

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'expirable-store-package-'));
  app = join(tmp, 'app');
  await run(NPM, ['run', 'build'], { cwd: ROOT, env: cleanEnv() });
  // --ignore-scripts: the build just ran (prepack would run it again).
  const { stdout } = await run(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: ROOT, env: cleanEnv() });
  const [info] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
  packed = info!.files;
  await mkdir(app);
  await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  await run(NPM, ['install', join(tmp, info!.filename), '--no-audit', '--no-fund', '--prefer-offline'], { cwd: app, env: cleanEnv() });
  manifest = JSON.parse(await readFile(join(app, 'node_modules/expirable-store/package.json'), 'utf8')) as Record<string, unknown>;
  for (const f of ['quickstart.mjs', 'two-nodes.mjs']) await copyFile(join(ROOT, 'examples', f), join(app, f));
}, 240_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Runs `node <file>` in the app; resolves with its output once it exits 0, rejects otherwise. */
async function runScript(file: string, source?: string): Promise<string> {
  if (source !== undefined) await writeFile(join(app, file), source);
  const { stdout } = await run(NODE, [file], { cwd: app, timeout: 30_000 });
  return stdout;
}

/** A child process of the app with its stdout lines, waited for by pattern (no sleeps). */
class Child {
  readonly proc: ChildProcess;
  readonly #lines: string[] = [];
  #seen = 0;
  #wake: (() => void) | undefined;
  #closed = false;
  /** Exit code and signal, once the process exited and its stdout is read to the end. */
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>;

  constructor(args: string[]) {
    this.proc = spawn(NODE, args, { cwd: app, stdio: ['ignore', 'pipe', 'inherit'] });
    this.exited = once(this.proc, 'close') as Promise<[number | null, NodeJS.Signals | null]>;
    void this.exited.then(() => {
      this.#closed = true;
      this.#wake?.();
    });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      this.#lines.push(line);
      this.#wake?.();
    });
  }

  /** The next line (after those already matched) matching `re`; rejects if the child exits first. */
  async line(re: RegExp): Promise<RegExpMatchArray> {
    for (;;) {
      while (this.#seen < this.#lines.length) {
        const m = this.#lines[this.#seen++]!.match(re);
        if (m) return m;
      }
      if (this.#closed) throw new Error(`${this.proc.spawnargs.slice(1).join(' ')} exited (${this.proc.exitCode ?? this.proc.signalCode}) before printing ${re}`);
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  kill(signal: NodeJS.Signals): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal);
  }
}

/** The body both module systems run: a real store on a standalone node, one read, close. */
const USAGE = `
  const node = await startNode();
  let fetches = 0;
  const Expirables = defineExpirables(
    { token: expirable({ fetch: async () => { fetches++; return ok('tok-' + fetches, Date.now() + 60_000); } }) },
    { node },
  );
  const first = await Expirables.token();
  const second = await Expirables.tokenOrThrow();
  console.log(JSON.stringify({ ok: first.ok, value: first.ok && first.value, second, fetches }));
  await Expirables.close();
  await node.close();
`;

describe('the tarball', () => {
  it('holds dist, README, LICENSE, CHANGELOG and package.json only', () => {
    const paths = packed.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/index.js', 'dist/index.d.ts']));
    const others = paths.filter((p) => !p.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md'].includes(p));
    expect(others).toEqual([]);
    // dist holds only compiled JavaScript and declarations: no tests, no sources.
    expect(paths.filter((p) => p.startsWith('dist/') && !/\.(js|d\.ts)$/.test(p))).toEqual([]);
  });

  it('ships no source map, and no file refers to one (the sources are not shipped)', async () => {
    expect(packed.filter((f) => f.path.endsWith('.map'))).toEqual([]);
    const js = packed.filter((f) => f.path.endsWith('.js') || f.path.endsWith('.d.ts'));
    expect(js.length).toBeGreaterThan(10);
    for (const f of js) {
      const text = await readFile(join(app, 'node_modules/expirable-store', f.path), 'utf8');
      expect(text, f.path).not.toMatch(/sourceMappingURL/);
    }
  });

  it('imports at run time only Node built-ins and its declared dependencies', async () => {
    const deps = Object.keys((manifest.dependencies ?? {}) as Record<string, string>);
    expect(deps).not.toContain('p-queue');
    const builtins = new Set(builtinModules);
    const bare = new Set<string>();
    for (const f of packed.filter((p) => p.path.endsWith('.js'))) {
      const text = await readFile(join(app, 'node_modules/expirable-store', f.path), 'utf8');
      for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        bare.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect(bare.size).toBeGreaterThan(0);
    for (const name of bare) expect(deps, `dist imports ${name}`).toContain(name);
  });

  it('declares an ES module with a default export condition and types, and an honest engines range', () => {
    expect(manifest.type).toBe('module');
    expect(manifest.exports).toEqual({
      '.': { types: './dist/index.d.ts', default: './dist/index.js' },
      './package.json': './package.json',
    });
    expect(manifest.sideEffects).toBe(false);
    // require() of an ES module is unflagged from these versions on.
    expect((manifest.engines as { node: string }).node).toBe('^20.19.0 || >=22.12.0');
    expect(manifest.license).toBe('MIT');
  });
});

describe('the installed package', () => {
  it('is imported from an ES module and runs a store on a standalone node', async () => {
    const out = await runScript('esm.mjs', `import { defineExpirables, expirable, ok, startNode } from 'expirable-store';\n${USAGE}`);
    expect(JSON.parse(out)).toEqual({ ok: true, value: 'tok-1', second: 'tok-1', fetches: 1 });
  });

  it('is required from CommonJS and runs a store on a standalone node', async () => {
    const out = await runScript(
      'cjs.cjs',
      `const { defineExpirables, expirable, ok, startNode } = require('expirable-store');\n(async () => {${USAGE}})().catch((err) => { console.error(err); process.exit(1); });`,
    );
    expect(JSON.parse(out)).toEqual({ ok: true, value: 'tok-1', second: 'tok-1', fetches: 1 });
  });

  it('typechecks from ESM and CommonJS TypeScript with @types/node', async () => {
    await writeFile(
      join(app, 'esm.mts'),
      `import { defineExpirables, expirable, ok, type ExpirableResult } from 'expirable-store';
const E = defineExpirables({ token: expirable({ fetch: async () => ok('v', Date.now() + 60_000) }) });
export const r: ExpirableResult<string> = await E.token();
export const s: string = await E.tokenOrThrow();
// @ts-expect-error: no expirable of that name
void E.tokn;
`,
    );
    await writeFile(
      join(app, 'cjs.cts'),
      `import { defineExpirables, expirable, ok } from 'expirable-store';
const E = defineExpirables({ n: expirable({ fetch: async () => ok(42, Date.now() + 60_000) }) });
export async function main(): Promise<number> { return E.nOrThrow(); }
`,
    );
    // @types/node comes from this repository (the app has no dev dependencies installed).
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true,
          types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')],
        },
        files: ['esm.mts', 'cjs.cts'],
      }),
    );
    const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
    await expect(run(NODE, [tsc, '-p', '.'], { cwd: app })).resolves.toBeDefined();
  }, 120_000);
});

describe("the README's examples, against the installed package", () => {
  it('are in the README word for word (the files minus their header comment)', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
    for (const f of ['quickstart.mjs', 'two-nodes.mjs']) {
      const body = (await readFile(join(ROOT, 'examples', f), 'utf8')).replace(/^(\/\/.*\n)+/, '').trim();
      expect(blocks, f).toContain(body);
    }
  });

  it('examples/quickstart.mjs runs as written: one provider call, served from memory, fetched again after clear', async () => {
    const out = await runScript('quickstart.mjs');
    expect(out).toMatch(/^apiToken = token-1, valid for (59|60) s, provider calls: 1$/m);
    expect(out).toMatch(/^after clear: token-2, provider calls: 2$/m);
  });

  it("examples/two-nodes.mjs: the second process takes the first one's token, and both exit 0 on SIGTERM", async () => {
    const a = new Child(['two-nodes.mjs', 'a', '0']);
    let b: Child | undefined;
    try {
      const [, address] = await a.line(/^\[a\] listening on (127\.0\.0\.1:\d+)$/);
      expect((await a.line(/^\[a\] apiToken = (.*)$/))[1]).toBe('token fetched by a; provider calls on this node: 1; peers: ');
      b = new Child(['two-nodes.mjs', 'b', '0', address!]);
      expect((await b.line(/^\[b\] apiToken = (.*)$/))[1]).toBe('token fetched by a; provider calls on this node: 0; peers: a');
      for (const child of [b, a]) {
        child.kill('SIGTERM');
        await child.line(/^\[[ab]\] closed$/);
        expect(await child.exited).toEqual([0, null]);
      }
    } finally {
      for (const child of [a, b]) child?.kill('SIGKILL');
    }
  });
});
