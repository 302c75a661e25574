/**
 * Operators find and read a failover in the Temporal Web UI without reading code: the failover workflow is
 * tagged with search attributes (VmsFolder, VmsServerId, VmsFailoverTarget) that list queries filter on,
 * both through the client API and in the UI itself, driven here with headless Chromium.
 */
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowExecutionInfo } from '@temporalio/client';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { VmsFailoverTarget, VmsFolder, VmsServerId } from '../domain/search-attributes';
import { projectRoot } from '../infra/paths';
import { temporalNamespace, temporalWebUi } from './support/environment';
import { keepHeartbeating } from './support/heartbeat-loop';
import { site, slave, standby } from './support/site';
import { eventually, failoverOf } from './support/wait';
import { useTestWorld } from './support/world';

const WEB_UI = temporalWebUi();
const CHROMIUM = '/usr/bin/chromium';
// Written on every run; docs/ keeps a copy chosen by hand, so a test run leaves the work tree clean.
const SCREENSHOTS = join(projectRoot(), '.data', 'test', 'screenshots');

const world = useTestWorld();

/** This test's workflows only: the dev server keeps every other run's workflows too. */
const ofThisSite = (query: string): string =>
  `WorkflowId STARTS_WITH 'vms-${world.current.site}-' AND ${query}`;

const listed = async (query: string): Promise<WorkflowExecutionInfo[]> => {
  const found: WorkflowExecutionInfo[] = [];
  for await (const execution of world.current.client.workflow.list({ query })) found.push(execution);
  return found;
};

/** Visibility lags the workflow by a moment: wait until the query sees `count` executions. */
const listedEventually = (query: string, count: number): Promise<WorkflowExecutionInfo[]> =>
  eventually(`${count} workflows to match ${query}`, async () => {
    const found = await listed(query);
    return found.length === count ? found : undefined;
  });

const openWorkflowList = async (page: Page, query: string): Promise<void> => {
  await page.goto(`${WEB_UI}/namespaces/${temporalNamespace()}/workflows?query=${encodeURIComponent(query)}`);
};

/** The UI renders summaries and details (markdown) in sandboxed frames: look in every frame. */
const shows = (page: Page, text: string): Promise<true> =>
  eventually(`the Web UI to show "${text}"`, async () => {
    for (const frame of page.frames()) {
      const body = await frame
        .locator('body')
        .innerText()
        .catch(() => '');
      if (body.replace(/\s+/g, ' ').includes(text)) return true;
    }
    return undefined;
  });

const launchChromium = (userDataDir: string): Promise<BrowserContext> =>
  chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1920, height: 1000 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });

test('a finished failover is found by folder and server id, through the API and in the Web UI', async () => {
  const { fleet, agents, seed, withWorker } = world.current;
  await seed(site(slave({ id: 'rec-01', timeout: '2s' }), standby('fo-01')));

  // The worker keeps running while the UI is read: the current details are a query answered by a worker.
  await withWorker(async () => {
    // The promoted server is alive and heartbeats like a real recorder, so that its own monitor (it inherits
    // the protection) does not fail it over in turn while the UI is read.
    const promotedServer = keepHeartbeating(agents, ['fo-01'], 250);
    await fleet.startMonitor('rec-01');
    const result = await failoverOf(world.current, 'rec-01');
    expect(result).toMatchObject({ slaveId: 'rec-01', failoverServerId: 'fo-01' });

    // The monitor and the failover both carry VmsFolder='BrokenRecorders'; the workflow type tells them apart.
    const inBrokenRecorders = await listedEventually(ofThisSite(`VmsFolder='BrokenRecorders'`), 2);
    expect(inBrokenRecorders.map((execution) => execution.type).sort()).toEqual([
      'failoverWorkflow',
      'slaveMonitorWorkflow',
    ]);
    const [failover] = await listedEventually(
      ofThisSite(`VmsServerId='rec-01' AND WorkflowType='failoverWorkflow'`),
      1,
    );
    expect(failover?.workflowId).toBe(result.failoverId);
    expect(failover?.status.name).toBe('COMPLETED');
    expect(failover?.typedSearchAttributes.get(VmsServerId)).toBe('rec-01');
    expect(failover?.typedSearchAttributes.get(VmsFolder)).toBe('BrokenRecorders');
    expect(failover?.typedSearchAttributes.get(VmsFailoverTarget)).toBe('fo-01');
    expect(await listed(ofThisSite(`VmsFailoverTarget='fo-01'`))).toHaveLength(1);
    expect(await listed(ofThisSite(`VmsServerId='fo-01' AND WorkflowType='failoverWorkflow'`))).toEqual([]);

    const userDataDir = mkdtempSync(join(tmpdir(), 'vms-web-ui-'));
    const browser = await launchChromium(userDataDir);
    try {
      const page = browser.pages()[0] ?? (await browser.newPage());
      const failoverRow = page.getByRole('row').filter({ hasText: result.failoverId });

      await openWorkflowList(page, ofThisSite(`VmsFolder='BrokenRecorders'`));
      await failoverRow.filter({ hasText: 'failoverWorkflow' }).filter({ hasText: 'Completed' }).waitFor();
      await page.getByRole('row').filter({ hasText: 'slaveMonitorWorkflow' }).waitFor();
      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, 'web-ui-failover.png') });

      await openWorkflowList(page, ofThisSite(`VmsServerId='fo-01' AND WorkflowType='failoverWorkflow'`));
      await page.getByRole('heading', { name: 'No Results' }).waitFor();
      expect(await failoverRow.count()).toBe(0);

      await openWorkflowList(page, ofThisSite(`VmsServerId='rec-01' AND WorkflowType='failoverWorkflow'`));
      await page.getByRole('link', { name: result.failoverId }).click();
      await page.getByRole('tab', { name: 'User Metadata' }).click();
      await shows(page, 'Failover of rec-01 (heartbeat-timeout)');
      // The static details the monitor gives the failover when it starts it.
      await shows(page, 'Slave rec-01 was deemed broken (heartbeat-timeout) at');
      await shows(page, 'rec-01: completed fo-01 records 2 IP cameras of rec-01.');
      await page.screenshot({ path: join(SCREENSHOTS, 'web-ui-failover-details.png') });
    } finally {
      await browser.close();
      rmSync(userDataDir, { recursive: true, force: true });
      await promotedServer.stop();
      await fleet.stopMonitor('fo-01');
    }
  });
});
