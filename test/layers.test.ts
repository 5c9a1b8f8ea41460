// Pins the layering rule: each layer imports only from the layers below it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', 'src');
const rank = (file: string): number => {
  const rel = relative(root, file);
  if (rel.startsWith('util') || rel === 'errors.ts') return 0;
  if (rel.startsWith('actors')) return 1;
  if (rel.startsWith('mesh')) return 2;
  if (rel === 'node.ts') return 3;
  if (rel.startsWith('store') || rel.startsWith('dsl')) return 4;
  return 5; // index.ts
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('layers', () => {
  it('no module imports from a layer above its own', () => {
    const violations: string[] = [];
    for (const file of files(root)) {
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
        const target = resolve(dirname(file), m[1]!).replace(/\.js$/, '.ts');
        if (rank(target) > rank(file)) violations.push(`${relative(root, file)} -> ${relative(root, target)}`);
      }
    }
    expect(violations).toEqual([]);
  });
});
