// Pins the layering rule: each layer imports only from the layers below it. The order is
// declared once, lowest first; a module's layer is the first entry its path starts with.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', 'src');

/** The layers, lowest first. Entries on one line share a rank. */
const LAYERS: readonly (readonly string[])[] = [
  ['util/', 'errors.ts'],
  ['actors/'],
  ['mesh/'],
  ['node.ts', 'node-cluster.ts'],
  ['store/'],
  ['dsl/'],
  ['index.ts'],
];

function rank(file: string): number {
  const rel = relative(root, file).split(sep).join('/');
  const i = LAYERS.findIndex((layer) => layer.some((p) => (p.endsWith('/') ? rel.startsWith(p) : rel === p)));
  if (i < 0) throw new Error(`src/${rel} is in no declared layer: add it to LAYERS`);
  return i;
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function violations(): string[] {
  const out: string[] = [];
  for (const file of files(root)) {
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
      const target = resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts');
      if (rank(target) > rank(file)) out.push(`${relative(root, file)} -> ${relative(root, target)}`);
    }
  }
  return out;
}

describe('layers', () => {
  it('no module imports from a layer above its own', () => {
    expect(violations()).toEqual([]);
  });

  it('the store is below the DSL, and every module of src is in a declared layer', () => {
    expect(rank(join(root, 'store', 'engine.ts'))).toBeLessThan(rank(join(root, 'dsl', 'define.ts')));
    expect(rank(join(root, 'mesh', 'mesh.ts'))).toBeLessThan(rank(join(root, 'store', 'engine.ts')));
    for (const f of files(root)) expect(() => rank(f)).not.toThrow();
  });
});
