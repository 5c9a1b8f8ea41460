// SVG bar charts of bench results, written by hand (no dependency): a chart is a stack of
// panels, each with its own unit, each a row of groups of horizontal bars. A bar's kind
// (ours, floor, peer) picks its colour, so the headline comparison reads at a glance.
// Values that are not finite (a figure a run could not take) are drawn as "n/a".

export type BarKind = 'ours' | 'floor' | 'peer' | 'other';

export interface Bar {
  label: string;
  value: number;
  kind?: BarKind;
}

export interface BarGroup {
  /** Shown above the group's bars; omit for a panel of one group. */
  label?: string;
  bars: Bar[];
}

export interface Panel {
  title: string;
  /** Unit printed after every value, e.g. `µs`, `ns/op`, `ops/s`. */
  unit: string;
  groups: BarGroup[];
}

export interface Chart {
  /** The file is `<bench>.svg`, or `<bench>-<suffix>.svg` with a suffix. */
  suffix?: string;
  title: string;
  /** A line under the title (machine, mode, parameters). */
  subtitle?: string;
  panels: Panel[];
}

const COLOURS: Record<BarKind, string> = { ours: '#1f77b4', floor: '#7f7f7f', peer: '#ff7f0e', other: '#2ca02c' };
const WIDTH = 760;
const LABEL_W = 300;
const BAR_MAX_W = WIDTH - LABEL_W - 140;
const BAR_H = 18;
const GAP = 6;

/** Escapes text for SVG element content and attribute values. */
export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A value with three significant digits and thousands separators (same as the tables). */
function num(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** The SVG text of `chart`. */
export function renderChart(chart: Chart): string {
  const out: string[] = [];
  let y = 28;
  out.push(`<text class="title" x="12" y="${y}" font-size="16" font-weight="bold">${escapeXml(chart.title)}</text>`);
  if (chart.subtitle) {
    y += 18;
    out.push(`<text class="subtitle" x="12" y="${y}" font-size="11" fill="#555">${escapeXml(chart.subtitle)}</text>`);
  }
  y += 12;
  for (const panel of chart.panels) {
    y += 24;
    out.push(`<g class="panel">`);
    out.push(`<text class="panel-title" x="12" y="${y}" font-size="13" font-weight="bold">${escapeXml(panel.title)} (${escapeXml(panel.unit)})</text>`);
    y += 8;
    const max = Math.max(0, ...panel.groups.flatMap((g) => g.bars.map((b) => (Number.isFinite(b.value) ? b.value : 0))));
    for (const group of panel.groups) {
      if (group.label !== undefined) {
        y += 16;
        out.push(`<text class="group-label" x="12" y="${y}" font-size="11" font-style="italic">${escapeXml(group.label)}</text>`);
      }
      for (const bar of group.bars) {
        y += GAP;
        const w = max > 0 && Number.isFinite(bar.value) ? Math.max(1, (Math.max(0, bar.value) / max) * BAR_MAX_W) : 0;
        const kind = bar.kind ?? 'other';
        const mid = y + BAR_H / 2 + 4;
        out.push(
          `<g class="bar" data-kind="${kind}" data-label="${escapeXml(bar.label)}" data-value="${Number.isFinite(bar.value) ? bar.value : 'NaN'}">` +
            `<text x="${LABEL_W - 8}" y="${mid}" font-size="11" text-anchor="end">${escapeXml(bar.label)}</text>` +
            `<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${COLOURS[kind]}"/>` +
            `<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${mid}" font-size="11">${escapeXml(`${num(bar.value)} ${panel.unit}`)}</text>` +
            `</g>`,
        );
        y += BAR_H;
      }
    }
    out.push(`</g>`);
    y += 8;
  }
  // Legend of the kinds used.
  const kinds = [...new Set(chart.panels.flatMap((p) => p.groups.flatMap((g) => g.bars.map((b) => b.kind ?? 'other'))))];
  y += 20;
  let x = 12;
  out.push(`<g class="legend">`);
  for (const k of kinds) {
    out.push(`<rect x="${x}" y="${y - 10}" width="12" height="12" fill="${COLOURS[k]}"/><text x="${x + 16}" y="${y}" font-size="11">${k}</text>`);
    x += 90;
  }
  out.push(`</g>`);
  const height = y + 16;
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif">\n` +
    `<rect width="100%" height="100%" fill="#fff"/>\n` +
    `${out.join('\n')}\n</svg>\n`
  );
}

/** Unit of a metric name by its suffix (the conventions put the unit last). */
export function unitOf(metric: string): string | undefined {
  if (metric.endsWith('PerSec')) return '/s';
  if (metric.endsWith('Ns')) return 'ns';
  if (metric.endsWith('Us')) return 'µs';
  if (metric.endsWith('Ms')) return 'ms';
  return undefined;
}

/** A chart of every metric with a unit suffix, one panel per unit: for benches without their own. */
export function defaultChart(name: string, metrics: Record<string, number>, subtitle?: string): Chart {
  const byUnit = new Map<string, Bar[]>();
  for (const [k, v] of Object.entries(metrics)) {
    const u = unitOf(k);
    if (u === undefined) continue;
    if (!byUnit.has(u)) byUnit.set(u, []);
    byUnit.get(u)!.push({ label: k, value: v, kind: 'ours' });
  }
  return {
    title: name,
    subtitle,
    panels: [...byUnit].map(([unit, bars]) => ({ title: name, unit, groups: [{ bars }] })),
  };
}

/** A panel of one group, bars given as [label, value, kind]. */
export function panel(title: string, unit: string, bars: [label: string, value: number | undefined, kind: BarKind][]): Panel {
  return { title, unit, groups: [{ bars: bars.map(([label, value, kind]) => ({ label, value: value ?? NaN, kind })) }] };
}
