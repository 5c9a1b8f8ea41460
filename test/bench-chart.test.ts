// The SVG chart writer of the benchmarks: its output parses as XML with an <svg> root, holds
// one bar per value with its label, kind and a width proportional to the value, escapes
// text, and draws values that are not numbers as "n/a" without a bar.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { defaultChart, escapeXml, panel, renderChart, unitOf, type Chart } from '../bench/lib/chart.js';

type Node = Record<string, unknown>;
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', isArray: (name) => ['g', 'text', 'rect'].includes(name) });

function parse(svg: string): Node {
  expect(XMLValidator.validate(svg)).toBe(true);
  const doc = parser.parse(svg) as Node;
  expect(doc.svg).toBeDefined();
  return doc.svg as Node;
}

/** Every <g class="bar"> of the document, wherever it is nested. */
function bars(n: unknown, out: Node[] = []): Node[] {
  if (Array.isArray(n)) for (const x of n) bars(x, out);
  else if (n && typeof n === 'object') {
    const o = n as Node;
    if (o['@class'] === 'bar') out.push(o);
    for (const [k, v] of Object.entries(o)) if (!k.startsWith('@')) bars(v, out);
  }
  return out;
}

const chart: Chart = {
  title: 'lock: <global> & "fair"',
  subtitle: 'Node v20, 2 CPUs',
  panels: [
    panel('acquire p50', 'µs', [
      ['raw round trip (floor)', 30, 'floor'],
      ['ours', 120, 'ours'],
      ['erlang', 60, 'peer'],
    ]),
    panel('grants', '/s', [
      ['ours', 5000, 'ours'],
      ['redlock', undefined, 'peer'],
    ]),
  ],
};

describe('bench charts', () => {
  it('renders well-formed SVG with a root <svg>, a title and one bar per value', () => {
    const svg = renderChart(chart);
    const root = parse(svg);
    expect(root['@xmlns']).toBe('http://www.w3.org/2000/svg');
    expect(Number(root['@width'])).toBeGreaterThan(0);
    expect(Number(root['@height'])).toBeGreaterThan(0);
    const texts = (root.text as Node[]).map((t) => t['#text']);
    expect(texts).toContain('lock: <global> & "fair"'); // escaped in the file, the same text once parsed
    expect(svg).toContain('lock: &lt;global&gt; &amp; &quot;fair&quot;');
    const b = bars(root);
    expect(b.map((x) => x['@data-label'])).toEqual(['raw round trip (floor)', 'ours', 'erlang', 'ours', 'redlock']);
    expect(b.map((x) => x['@data-kind'])).toEqual(['floor', 'ours', 'peer', 'ours', 'peer']);
  });

  it('bar widths are proportional to the values within a panel; a missing value has no bar and reads n/a', () => {
    const b = bars(parse(renderChart(chart)));
    const width = (x: Node): number => Number((x.rect as Node[])[0]!['@width']);
    const value = (x: Node): string => String((x.text as Node[])[1]!['#text']);
    expect(width(b[1]!)).toBeCloseTo(width(b[0]!) * 4, 0);
    expect(width(b[2]!)).toBeCloseTo(width(b[0]!) * 2, 0);
    expect(value(b[1]!)).toBe('120 µs');
    expect(width(b[4]!)).toBe(0);
    expect(value(b[4]!)).toBe('n/a /s');
    expect(b[4]!['@data-value']).toBe('NaN');
  });

  it('the default chart groups metrics by the unit their name ends with', () => {
    const c = defaultChart('fake', { fooNs: 10, barPerSec: 5, bazUs: 3, quxMs: 1, count: 7 });
    expect(c.panels.map((p) => p.unit)).toEqual(['ns', '/s', 'µs', 'ms']);
    expect(c.panels.flatMap((p) => p.groups[0]!.bars.map((b) => b.label))).toEqual(['fooNs', 'barPerSec', 'bazUs', 'quxMs']);
    expect(bars(parse(renderChart(c)))).toHaveLength(4);
    expect(unitOf('count')).toBeUndefined();
  });

  it('escapes the five XML special characters', () => {
    expect(escapeXml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
  });
});
