/** Durations as operators write them: "250ms", "30s", "5m", "1h", "1h30m". */

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/;

/** Parses a duration into milliseconds; returns undefined for anything that is not one. */
export const parseDuration = (text: string): number | undefined => {
  let rest = text.trim();
  if (rest === '') return undefined;
  let total = 0;
  while (rest !== '') {
    const match = DURATION_PATTERN.exec(rest);
    if (!match) return undefined;
    const [whole, amount, unit] = match as unknown as [string, string, keyof typeof UNIT_MS];
    total += Number(amount) * UNIT_MS[unit];
    rest = rest.slice(whole.length);
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
};

export const formatDuration = (ms: number): string => {
  if (ms < 1_000) return `${ms}ms`;
  if (ms < 60_000) return `${+(ms / 1_000).toFixed(3)}s`;
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(2)}m`;
  return `${+(ms / 3_600_000).toFixed(2)}h`;
};
