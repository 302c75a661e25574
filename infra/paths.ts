import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The project root, found from here whether running from TypeScript sources or from dist/. */
export const projectRoot = (): string => {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above ' + __dirname);
    dir = parent;
  }
  return dir;
};
