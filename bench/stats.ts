/** Percentiles by nearest rank: every figure printed is one of the measured values. */

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export const percentiles = (values: number[]): Percentiles => {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (fraction: number): number => {
    if (sorted.length === 0) return Number.NaN;
    const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1));
    return sorted[index] ?? Number.NaN;
  };
  return { count: sorted.length, p50: rank(0.5), p95: rank(0.95), p99: rank(0.99), max: rank(1) };
};

export const round = (value: number, digits = 1): number => {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
};

export const formatPercentiles = (name: string, values: Percentiles, unit = 'ms'): string =>
  `${name.padEnd(34)} p50 ${round(values.p50)} ${unit}  p95 ${round(values.p95)} ${unit}  ` +
  `p99 ${round(values.p99)} ${unit}  max ${round(values.max)} ${unit}  (n=${values.count})`;
