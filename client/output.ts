/** Human tables and JSON for the CLI's standard output. */
import { formatDuration } from '../domain/duration';

export const printLine = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

export const printJson = (value: unknown): void => {
  printLine(JSON.stringify(value, null, 2));
};

/** Left-aligned columns separated by two spaces; an empty table prints `empty` instead. */
export const formatTable = (headers: string[], rows: string[][], empty = '(none)'): string[] => {
  if (rows.length === 0) return [`  ${empty}`];
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: string[]) =>
    `  ${cells
      .map((cell, column) => cell.padEnd(widths[column] ?? 0))
      .join('  ')
      .trimEnd()}`;
  return [line(headers), ...rows.map(line)];
};

export const printTable = (headers: string[], rows: string[][], empty?: string): void => {
  formatTable(headers, rows, empty).forEach((line) => printLine(line));
};

/** `2024-05-01 12:00:03Z`: second precision, UTC, sortable. */
export const formatTime = (at: Date | number | null): string => {
  if (at === null) return '-';
  return `${new Date(at).toISOString().slice(0, 19).replace('T', ' ')}Z`;
};

export const formatAgo = (atMs: number | null, nowMs: number): string =>
  atMs === null ? 'never' : `${formatDuration(Math.max(0, nowMs - atMs))} ago`;

/** The time from `from` to `to`, `+1.25s`, or `-` when either is missing. */
export const formatSpan = (from: Date | null, to: Date | null): string =>
  from === null || to === null ? '-' : `+${formatDuration(Math.max(0, to.getTime() - from.getTime()))}`;
