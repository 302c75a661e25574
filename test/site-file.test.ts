/** A site file's problems are reported at their line and column, for YAML and JSON alike. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../infra/paths';
import { SiteSourceError, parseSiteText } from '../client/site-source';

const errorOf = (text: string, file = 'site.yaml'): SiteSourceError => {
  try {
    parseSiteText(text, file);
  } catch (error) {
    if (error instanceof SiteSourceError) return error;
    throw error;
  }
  throw new Error('the site file was accepted');
};

const yaml = (...lines: string[]) => `${lines.join('\n')}\n`;

describe('a site file in YAML', () => {
  test('a bad drive is reported at the drive entry, with its path', () => {
    const error = errorOf(
      yaml(
        'servers:',
        '  - id: master',
        '    role: master',
        '    drives: [C]',
        '  - id: rec-01',
        '    role: slave',
        '    drives:',
        '      - { letter: C, material: false }',
        '      - "7"',
      ),
    );
    expect(error.message).toBe('site.yaml:9:9: servers[1].drives[1]: "7" is not a drive letter (A to Z)');
    expect(error.position).toEqual({ line: 9, col: 9 });
  });

  test('a bad value is reported where the value is', () => {
    const error = errorOf(
      yaml(
        'servers:',
        '  - id: rec-01',
        '    role: slave',
        '    failoverTimeout: soon',
        '    drives: [C, D]',
      ),
    );
    expect(error.message).toBe(
      'site.yaml:4:22: servers[0].failoverTimeout: must be a duration such as "30s" or "2m"',
    );
  });

  test('a missing field is reported at the mapping that lacks it', () => {
    const error = errorOf(yaml('servers:', '  - id: rec-01', '    role: slave', '  - id: rec-02')).message;
    expect(error).toBe('site.yaml:2:5: servers[0].drives: must list at least one drive letter');
  });

  test('a key without a value is reported at the key', () => {
    const error = errorOf(yaml('servers:', '  - id: rec-01', '    role: slave', '    drives:')).message;
    expect(error).toBe('site.yaml:4:5: servers[0].drives: must be a list');
  });

  test('Master protection is refused at the protected field', () => {
    const error = errorOf(
      yaml('servers:', '  - id: master', '    role: master', '    drives: [C]', '    protected: true'),
    );
    expect(error.message).toMatch(/^site\.yaml:5:16: servers\[0\]\.protected: the Master cannot be placed/);
  });

  test('a misspelt field is refused, naming it, rather than silently ignored', () => {
    const error = errorOf(
      yaml(
        'servers:',
        '  - id: rec-01',
        '    role: slave',
        '    drives: [C, D]',
        '    camera:',
        '      - { id: cam-1 }',
      ),
    );
    expect(error.message).toMatch(
      /^site\.yaml:6:\d+: servers\[0\]\.camera: unknown field: expected one of id, /,
    );
  });

  test('a syntax error is reported at its line', () => {
    const error = errorOf(yaml('servers:', '  - id: rec-01', '    role: slave', '   drives: [C, D')).message;
    expect(error).toMatch(/^site\.yaml:4:\d+: syntax error: /);
  });

  test('a duplicate key is a syntax error', () => {
    const error = errorOf(yaml('servers:', '  - id: rec-01', '    id: rec-02', '    role: slave')).message;
    expect(error).toMatch(/^site\.yaml:3:5: syntax error: Map keys must be unique/);
  });

  test('an empty file is not a site', () => {
    expect(errorOf('').message).toBe('site.yaml:1:1: must be a mapping');
  });
});

describe('a site file in JSON', () => {
  const json = [
    '{',
    '  "servers": [',
    '    { "id": "m", "role": "master", "drives": ["C"] },',
    '    { "id": "r", "role": "boss", "drives": ["C"] }',
    '  ]',
    '}',
  ].join('\n');

  test('a bad value is reported at its line and column', () => {
    expect(errorOf(json, 'site.json').message).toBe(
      'site.json:4:26: servers[1].role: must be one of master, slave, failover',
    );
  });

  test('a syntax error is reported at its line', () => {
    const text = ['{', '  "servers": [', '    { "id": "m",, "role": "master" }', '  ]', '}'].join('\n');
    expect(errorOf(text, 'site.json').message).toMatch(/^site\.json:3:\d+: syntax error: /);
  });
});

test('a field named by a later check (a conflict with the stored site) is located too', () => {
  const source = parseSiteText(
    yaml(
      'servers:',
      '  - id: rec-01',
      '    role: slave',
      '    drives: [C, D]',
      '    cameras:',
      '      - id: cam-1',
      '      - id: cam-2',
    ),
    'site.yaml',
  );
  expect(source.positionOf(['servers', 0, 'cameras', 1, 'id'])).toEqual({ line: 7, col: 13 });
  expect(source.positionOf(['servers', 0, 'role'])).toEqual({ line: 3, col: 11 });
});

test('the example site is a Master, three protected Slaves and two matching standbys', () => {
  const file = join(projectRoot(), 'examples', 'site.yaml');
  const { site } = parseSiteText(readFileSync(file, 'utf8'), file);
  const byRole = (role: string) => site.servers.filter((server) => server.role === role);
  const letters = (id: string) =>
    site.servers
      .find((server) => server.id === id)
      ?.drives.map((drive) => drive.letter)
      .join(',');

  expect(byRole('master')).toHaveLength(1);
  expect(byRole('slave').map((server) => [server.id, server.protected])).toEqual([
    ['rec-01', true],
    ['rec-02', true],
    ['rec-03', true],
  ]);
  for (const slave of byRole('slave')) {
    expect(slave.drives.find((drive) => drive.letter === 'C')).toEqual({ letter: 'C', material: false });
  }
  expect(byRole('failover').map((server) => letters(server.id))).toEqual(['C,D,E', 'C,D,E']);
  expect([letters('rec-01'), letters('rec-02'), letters('rec-03')]).toEqual(['C,D,E', 'C,D,E', 'C,F,G']);
  const cameraKinds = new Set(site.servers.flatMap((server) => server.cameras.map((camera) => camera.kind)));
  expect(cameraKinds).toEqual(new Set(['ip', 'analog']));
  expect(new Set(site.servers.flatMap((server) => server.plugins))).toEqual(
    new Set(['ANPR+', 'Activity Map']),
  );
});
