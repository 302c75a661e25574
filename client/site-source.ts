/**
 * Reads a site description from YAML or JSON text and reports every problem at its line and column in the
 * file, so an operator can go straight to `servers[2].drives[0]` in an editor. JSON is read by the YAML
 * parser too (YAML is a superset of JSON): one parser, one way of mapping paths to lines.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isNode, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node } from 'yaml';
import type { Site } from '../domain/site-file';
import { SiteFileError, formatPath, parseSite } from '../domain/site-file';
import { CliError, ExitCode } from './cli-errors';

export interface FilePosition {
  line: number;
  col: number;
}

/** A problem in a site file, at a line and column: `site.yaml:12:9: servers[2].drives[0]: problem`. */
export class SiteSourceError extends CliError {
  constructor(
    readonly file: string,
    readonly position: FilePosition,
    readonly problem: string,
  ) {
    super(`${file}:${position.line}:${position.col}: ${problem}`, ExitCode.BadInput);
  }
}

export interface SiteSource {
  file: string;
  site: Site;
  /** The file's content as read (JSON-compatible), before validation filled in defaults. */
  content: unknown;
  /** Where a field of the file is, for errors found later (a conflict with the stored site). */
  positionOf(path: (string | number)[]): FilePosition;
  /** The error to show for a problem at `path`. */
  errorAt(path: (string | number)[], problem: string): SiteSourceError;
}

type Path = (string | number)[];

const keyMatches = (key: unknown, segment: string | number): boolean =>
  isScalar(key) ? String(key.value) === String(segment) : key === segment;

/** The deepest node of the document along `path`: the field itself, or its nearest existing parent. */
const nodeAt = (document: Document, path: Path): Node | undefined => {
  let current: unknown = document.contents;
  let found: Node | undefined = isNode(current) ? current : undefined;
  for (const segment of path) {
    let next: unknown;
    let key: unknown;
    if (isMap(current)) {
      const pair = current.items.find((item) => isPair(item) && keyMatches(item.key, segment));
      key = pair?.key;
      next = pair?.value;
    } else if (isSeq(current) && typeof segment === 'number') {
      next = current.items[segment];
    }
    const emptyValue = isScalar(next) && next.value === null && next.range?.[0] === next.range?.[1];
    if (isNode(next) && next.range && !emptyValue) {
      found = next;
    } else if (isNode(key) && key.range) {
      // A key without a value (`drives:`): point at the key.
      return key;
    } else {
      return found;
    }
    current = next;
  }
  return found;
};

/** Parses site text; every problem, syntax or content, is a SiteSourceError with a line and column. */
export const parseSiteText = (text: string, file: string): SiteSource => {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const position = (offset: number): FilePosition => lineCounter.linePos(offset);
  const syntaxError = document.errors[0];
  if (syntaxError !== undefined) {
    throw new SiteSourceError(file, position(syntaxError.pos[0]), `syntax error: ${syntaxError.message}`);
  }
  const positionOf = (path: Path): FilePosition => {
    const node = nodeAt(document, path);
    return node?.range ? position(node.range[0]) : { line: 1, col: 1 };
  };
  const errorAt = (path: Path, problem: string): SiteSourceError =>
    new SiteSourceError(
      file,
      positionOf(path),
      path.length > 0 ? `${formatPath(path)}: ${problem}` : problem,
    );
  const content: unknown = document.toJS();
  let site: Site;
  try {
    site = parseSite(content);
  } catch (error) {
    if (error instanceof SiteFileError) throw errorAt(error.path, error.problem);
    throw error;
  }
  return { file, site, content, positionOf, errorAt };
};

export const readSiteFile = async (file: string): Promise<SiteSource> => {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as { code?: string }).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new CliError(`cannot read the site file ${file}: ${reason}`, ExitCode.BadInput);
  }
  return parseSiteText(text, file);
};
