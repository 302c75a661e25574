/**
 * Parsers of command-line values. A bad value is reported by commander as
 * `vms: error: option '--timeout <duration>' argument 'soon' is invalid. ...` and changes nothing.
 */
import { InvalidArgumentError } from 'commander';
import { parseDuration } from '../domain/duration';
import { InvalidInput, checkDriveLetters, checkServerId } from '../domain/validation';

const invalidArgument = <T>(check: () => T): T => {
  try {
    return check();
  } catch (error) {
    if (error instanceof InvalidInput) throw new InvalidArgumentError(error.message);
    throw error;
  }
};

/** A duration such as 30s, 20m or 1h30m; `0` where `allowZero` (ends a maintenance window). */
export const durationArgument =
  ({ allowZero = false } = {}) =>
  (value: string): number => {
    if (allowZero && value.trim() === '0') return 0;
    const ms = parseDuration(value);
    if (ms === undefined || (ms === 0 && !allowZero)) {
      throw new InvalidArgumentError(
        `"${value}" is not a duration: write it like 500ms, 30s, 20m or 1h30m${allowZero ? ' (0 ends it)' : ''}`,
      );
    }
    return ms;
  };

export const serverIdArgument = (value: string): string => invalidArgument(() => checkServerId(value));

/** `C,D,E` or `C:,D:`: the drive letters of a server. */
export const driveListArgument = (value: string): string[] =>
  invalidArgument(() => checkDriveLetters(value.split(',').filter((letter) => letter.trim() !== '')));

/** A heartbeat gateway: http://host:port or https://host:port. */
export const gatewayArgument = (value: string): string => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a URL such as http://master:7380`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`"${value}" must start with http:// or https://`);
  }
  return value;
};

export const positiveIntegerArgument = (value: string): number => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) {
    throw new InvalidArgumentError(`"${value}" must be a whole number of at least 1`);
  }
  return parsed;
};

const letterOf = (raw: string, option: string): string => {
  const [letter] = invalidArgument(() => checkDriveLetters([raw]));
  if (letter === undefined) throw new InvalidArgumentError(`${option} needs a drive letter`);
  return letter;
};

const splitAssignment = (value: string, example: string): [string, string] => {
  const at = value.indexOf('=');
  if (at <= 0 || at === value.length - 1) {
    throw new InvalidArgumentError(`"${value}" must look like ${example}`);
  }
  return [value.slice(0, at), value.slice(at + 1)];
};

const HEALTHY_WORDS = new Set(['ok', 'healthy', 'up']);
const BROKEN_WORDS = new Set(['broken', 'failed', 'down']);

/** Repeatable `--disk D=ok` / `--disk E=broken`: disk health stated by the operator. */
export const diskStateArgument = (value: string, previous: Map<string, boolean> = new Map()) => {
  const [rawLetter, rawState] = splitAssignment(value, 'D=ok or E=broken');
  const letter = letterOf(rawLetter, '--disk');
  const state = rawState.trim().toLowerCase();
  if (!HEALTHY_WORDS.has(state) && !BROKEN_WORDS.has(state)) {
    throw new InvalidArgumentError(`disk state "${rawState}" must be ok or broken`);
  }
  if (previous.has(letter)) throw new InvalidArgumentError(`drive ${letter} is given twice`);
  return new Map(previous).set(letter, HEALTHY_WORDS.has(state));
};

/** Repeatable `--drive D=/mnt/recordings`: a drive letter checked on the real file system. */
export const driveMountArgument = (value: string, previous: Map<string, string> = new Map()) => {
  const [rawLetter, path] = splitAssignment(value, 'D=/path/to/mount');
  const letter = letterOf(rawLetter, '--drive');
  if (previous.has(letter)) throw new InvalidArgumentError(`drive ${letter} is given twice`);
  return new Map(previous).set(letter, path);
};
