/** The overhead chart of docs/, drawn as plain SVG: Slaves on a log axis, milliseconds on a linear one. */

export interface ChartPoint {
  slaves: number;
  failures: number;
  overheadMsP50: number;
  overheadMsP99: number;
  detectMsP99: number;
}

const WIDTH = 720;
const HEIGHT = 420;
const LEFT = 70;
const RIGHT = 170;
const TOP = 50;
const BOTTOM = 60;

const SERIES: { key: keyof ChartPoint; label: string; color: string }[] = [
  { key: 'overheadMsP99', label: 'failover overhead p99', color: '#c0392b' },
  { key: 'overheadMsP50', label: 'failover overhead p50', color: '#e67e22' },
  { key: 'detectMsP99', label: 'detection overhead p99', color: '#2471a3' },
];

const escapeXml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A round upper bound for the y axis: 1, 2 or 5 times a power of ten. */
const niceCeiling = (value: number): number => {
  const power = 10 ** Math.floor(Math.log10(Math.max(value, 1)));
  return [1, 2, 5, 10].map((step) => step * power).find((candidate) => candidate >= value) ?? 10 * power;
};

export const overheadChart = (points: ChartPoint[], subtitle: string): string => {
  const sorted = [...points].sort((a, b) => a.slaves - b.slaves);
  const minSlaves = Math.min(...sorted.map((point) => point.slaves));
  const maxSlaves = Math.max(...sorted.map((point) => point.slaves));
  const logMin = Math.log10(minSlaves) - 0.1;
  const logMax = Math.log10(maxSlaves) + 0.1;
  const yMax = niceCeiling(Math.max(...sorted.flatMap((point) => SERIES.map((s) => point[s.key]))) * 1.1);
  const plotWidth = WIDTH - LEFT - RIGHT;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const x = (slaves: number) => LEFT + ((Math.log10(slaves) - logMin) / (logMax - logMin)) * plotWidth;
  const y = (ms: number) => TOP + plotHeight - (ms / yMax) * plotHeight;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${LEFT}" y="22" font-size="15" font-weight="bold">Failover overhead against monitored Slaves</text>`,
    `<text x="${LEFT}" y="40" fill="#555">${escapeXml(subtitle)}</text>`,
  );
  for (let tick = 0; tick <= 5; tick += 1) {
    const ms = (yMax * tick) / 5;
    parts.push(
      `<line x1="${LEFT}" x2="${LEFT + plotWidth}" y1="${y(ms)}" y2="${y(ms)}" stroke="#e5e5e5"/>`,
      `<text x="${LEFT - 8}" y="${y(ms) + 4}" text-anchor="end">${Math.round(ms)}</text>`,
    );
  }
  for (const point of sorted) {
    parts.push(
      `<line x1="${x(point.slaves)}" x2="${x(point.slaves)}" y1="${TOP}" y2="${TOP + plotHeight}" stroke="#f0f0f0"/>`,
      `<text x="${x(point.slaves)}" y="${TOP + plotHeight + 18}" text-anchor="middle">${point.slaves}</text>`,
      `<text x="${x(point.slaves)}" y="${TOP + plotHeight + 32}" text-anchor="middle" fill="#777" font-size="10">K=${point.failures}</text>`,
    );
  }
  parts.push(
    `<line x1="${LEFT}" x2="${LEFT}" y1="${TOP}" y2="${TOP + plotHeight}" stroke="#333"/>`,
    `<line x1="${LEFT}" x2="${LEFT + plotWidth}" y1="${TOP + plotHeight}" y2="${TOP + plotHeight}" stroke="#333"/>`,
    `<text x="${LEFT + plotWidth / 2}" y="${HEIGHT - 10}" text-anchor="middle">monitored Slaves S (log scale); K failing at once</text>`,
    `<text transform="translate(18 ${TOP + plotHeight / 2}) rotate(-90)" text-anchor="middle">milliseconds after the deadline</text>`,
  );
  SERIES.forEach((series, index) => {
    const path = sorted.map((point) => `${x(point.slaves)},${y(point[series.key])}`).join(' ');
    parts.push(`<polyline points="${path}" fill="none" stroke="${series.color}" stroke-width="2"/>`);
    for (const point of sorted) {
      parts.push(
        `<circle cx="${x(point.slaves)}" cy="${y(point[series.key])}" r="3.5" fill="${series.color}"><title>${series.label} at ${point.slaves} Slaves: ${point[series.key]} ms</title></circle>`,
      );
    }
    const legendY = TOP + 10 + index * 20;
    parts.push(
      `<line x1="${LEFT + plotWidth + 15}" x2="${LEFT + plotWidth + 35}" y1="${legendY}" y2="${legendY}" stroke="${series.color}" stroke-width="2"/>`,
      `<text x="${LEFT + plotWidth + 40}" y="${legendY + 4}">${series.label}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
};
