/** `vms site import FILE`: loads or updates the site description, all of it or nothing. */
import type { Command } from 'commander';
import { DomainError, ErrorType } from '../../domain/errors';
import { importSite } from '../../store/site-import';
import type { ImportSummary } from '../../store/site-import';
import { CliError, ExitCode } from '../cli-errors';
import { printLine } from '../output';
import { withSession } from '../session';
import type { Session } from '../session';
import { SiteSourceError, readSiteFile } from '../site-source';
import type { SiteSource } from '../site-source';

/** The path of the field a refused import names (store/site-import.ts puts it in the error's details). */
const conflictPath = (refusal: DomainError): (string | number)[] | undefined => {
  const path = (refusal.details as { path?: unknown } | undefined)?.path;
  return Array.isArray(path) ? (path as (string | number)[]) : undefined;
};

const importAt = async (session: Session, source: SiteSource): Promise<ImportSummary> => {
  try {
    return await importSite(await session.db(), source.site);
  } catch (error) {
    if (error instanceof DomainError && error.type === ErrorType.InvalidSiteFile) {
      const path = conflictPath(error);
      if (path !== undefined) throw new SiteSourceError(source.file, source.positionOf(path), error.message);
    }
    throw error;
  }
};

const printSummary = (file: string, summary: ImportSummary): void => {
  printLine(
    `Imported ${file}: ${summary.serversCreated.length} servers added, ${summary.serversUpdated.length} updated, ${summary.camerasCreated} cameras added.`,
  );
  if (summary.serversCreated.length > 0) printLine(`  added: ${summary.serversCreated.join(', ')}`);
  if (summary.serversUpdated.length > 0) printLine(`  updated: ${summary.serversUpdated.join(', ')}`);
  if (summary.newStandbys.length > 0)
    printLine(`  new standby failover servers: ${summary.newStandbys.join(', ')}`);
  if (summary.protectedSlaves.length > 0) {
    printLine(
      `  protected Slaves: ${summary.protectedSlaves.join(', ')} (start their monitors: vms monitor start --all)`,
    );
  }
};

/** New standbys may be what a failover is waiting for: tell the waiting ones to look again. */
const notifyWaitingFailovers = async (session: Session): Promise<void> => {
  let notified: string[];
  try {
    notified = await (await session.fleet()).notifyStandbyAvailable();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new CliError(
      `the site was imported, but the failovers waiting for a standby could not be told (${message}); they look again on their own every ${session.config.failover.standbyRecheckMs / 1000}s`,
      ExitCode.Unavailable,
    );
  }
  if (notified.length > 0) printLine(`  failovers told a standby may match: ${notified.join(', ')}`);
};

export const registerSiteCommands = (program: Command): void => {
  const site = program.command('site').description('the site description: servers, drives, cameras, plugins');
  site
    .command('import')
    .description(
      'load or update the site from a YAML or JSON file, all of it or nothing; errors name FILE:LINE:COL',
    )
    .argument('<file>', 'site description (.yaml, .yml or .json)')
    .action((file: string) =>
      withSession(async (session) => {
        const source = await readSiteFile(file);
        const summary = await importAt(session, source);
        printSummary(file, summary);
        if (summary.newStandbys.length > 0) await notifyWaitingFailovers(session);
      }),
    );
};
