/**
 * Workflow determinism: the current workflow code must replay the recorded histories of earlier versions, or
 * running monitors and failovers would break on deploy. Histories: test/histories/*.json (record.ts).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { WORKFLOW_BUNDLE_PATH } from './support/environment';
import type { RecordedHistory } from './support/history-variants';
import { splitAfterLocalActivities } from './support/history-variants';

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
      'monitor-failed-over-on-broken-disks.json',
      'monitor-fenced-at-a-later-report.json',
      'monitor-failover-and-restore.json',
      'monitor-settings-changed-as-it-starts.json',
      'restore.json',
      'before-arrival-times-patches-first-monitor-failover-and-restore.json',
      'before-arrival-times-patches-first-monitor-fenced-at-a-later-report.json',
      'before-reports-first-monitor-failover-and-restore.json',
      'before-reports-first-monitor-fenced-at-a-later-report.json',
    ]),
  );
});

test.each(histories)('%s replays without nondeterminism', async (file) => {
  const history = readHistory(file);
  await expect(
    Worker.runReplayHistory({ workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } }, history, file),
  ).resolves.toBeUndefined();
});

/**
 * Under load a local activity's result can come back a workflow task after the task that recorded its marker,
 * and a replay then resolves it one task earlier than the run did (docs/guarantees.md). Workflows started by
 * the current code must replay every such variant of their histories: what follows a local activity may not
 * depend on the task it runs in (its clock, its history length, the patches asked there).
 */
const recordedByCurrentCode = histories.filter((file) => !file.startsWith('before-'));

test.each(recordedByCurrentCode)(
  '%s replays with a workflow task split after any local activity',
  async (file) => {
    const variants = splitAfterLocalActivities(readHistory(file) as RecordedHistory);
    expect(variants.length).toBeGreaterThan(0);
    const failures: string[] = [];
    for await (const result of Worker.runReplayHistories(
      { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } },
      variants.map(({ markerEventId, history }) => ({
        workflowId: `${file} split after event ${markerEventId}`,
        history,
      })),
    )) {
      if (result.error !== undefined) failures.push(`${result.workflowId}: ${String(result.error)}`);
    }
    expect(failures).toEqual([]);
  },
  120_000,
);

test('a monitor that asked a patch after its registration fails to replay a split of its history', async () => {
  // Recorded before the run's patches were asked first: the split that resolves the registration a task
  // earlier is the defect seen under load ("Non-deprecated patch marker encountered"), so this check finds it.
  const file = 'before-arrival-times-monitor-fenced-at-a-later-report.json';
  const variants = splitAfterLocalActivities(readHistory(file) as RecordedHistory);
  const [afterRegistration] = variants;
  expect(afterRegistration).toBeDefined();
  await expect(
    Worker.runReplayHistory(
      { workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH } },
      afterRegistration?.history,
      file,
    ),
  ).rejects.toThrow(
    /Non-deprecated patch marker encountered for change monitor-continue-as-new-on-any-signal/,
  );
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
