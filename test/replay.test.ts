/**
 * Workflow determinism: the current workflow code must replay the recorded histories of earlier versions, or
 * running monitors and failovers would break on deploy. Histories: test/histories/*.json (record.ts).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { WORKFLOW_BUNDLE_PATH } from './support/environment';

const HISTORIES_DIR = join(__dirname, 'histories');

const readHistory = (file: string): unknown => JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8'));
const histories = readdirSync(HISTORIES_DIR)
  .filter((file) => file.endsWith('.json'))
  .sort();

test('histories are recorded for the monitor, failover and restore workflows', () => {
  expect(histories).toEqual(
    expect.arrayContaining([
      'before-take-over-failover-waiting-for-standby.json',
      'before-take-over-failover-with-plugin-retries.json',
      'before-take-over-monitor-failover-and-restore.json',
      'failover-plugin-handed-over.json',
      'failover-waiting-for-standby.json',
      'failover-with-plugin-retries.json',
      'monitor-continued-as-new.json',
      'monitor-failed-over-continued-as-new.json',
      'monitor-fenced-at-a-later-report.json',
      'monitor-failover-and-restore.json',
      'monitor-settings-changed-as-it-starts.json',
      'restore.json',
    ]),
  );
});

test.each(histories)('%s replays without nondeterminism', async (file) => {
  const history = readHistory(file);
  await expect(
    Worker.runReplayHistory({ workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } }, history, file),
  ).resolves.toBeUndefined();
});

test('a workflow changed in a nondeterministic way fails to replay its recorded history', async () => {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./replay/restore-steps-swapped'),
    logger: undefined,
  });
  await expect(
    Worker.runReplayHistory({ workflowBundle: { code } }, readHistory('restore.json'), 'restore.json'),
  ).rejects.toBeInstanceOf(DeterminismViolationError);
});
