/**
 * `vms agent-token issue|revoke|list`: the credentials agents heartbeat with. A token is printed once, when
 * issued: give it to the agent (VMS_AGENT_TOKEN, or a file for --token-file) and keep no copy.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { agentCredentials, issueAgentCredential, revokeAgentCredentials } from '../../app/agent-credentials';
import { serverIdArgument } from '../arguments';
import { formatTime, printJson, printLine, printTable } from '../output';
import { withSession } from '../session';

export const registerAgentTokenCommands = (program: Command): void => {
  const tokens = program
    .command('agent-token')
    .description("credentials of the heartbeat agents: each agent's token is good for its own server only");

  tokens
    .command('issue')
    .description('issue a credential for the agent of a server; the token is shown this once')
    .argument('<server>', 'the Slave or standby the agent runs on', serverIdArgument)
    .option(
      '--out <file>',
      'write the token to this file (readable by its owner only) instead of printing it',
    )
    .option('--json', 'machine-readable output')
    .action((serverId: string, options: { json?: boolean; out?: string }) =>
      withSession(async (session) => {
        const issued = await issueAgentCredential(await session.db(), serverId);
        if (options.out !== undefined) {
          writeFileSync(options.out, `${issued.token}\n`, { mode: 0o600 });
          printLine(
            `${serverId}: credential ${issued.id} issued; its token is in ${options.out} (--token-file)`,
          );
          return;
        }
        if (options.json === true) {
          printJson(issued);
          return;
        }
        printLine(`${serverId}: credential ${issued.id} issued. Its token, shown this once:`);
        printLine(issued.token);
        printLine(`Give it to the agent on ${serverId} (VMS_AGENT_TOKEN, or a file for --token-file).`);
      }),
    );

  tokens
    .command('revoke')
    .description(
      "revoke a server's agent credentials (all, or the one named): its heartbeats are refused at once",
    )
    .argument('<server>', 'server id', serverIdArgument)
    .option('--id <credential>', 'revoke this credential only')
    .action((serverId: string, options: { id?: string }) =>
      withSession(async (session) => {
        const revoked = await revokeAgentCredentials(await session.db(), serverId, options.id);
        printLine(
          revoked.length === 0
            ? `${serverId}: no credential in force${options.id === undefined ? '' : ` named ${options.id}`}`
            : `${serverId}: revoked ${revoked.join(', ')}`,
        );
      }),
    );

  tokens
    .command('list')
    .description('credentials issued, by server (never the tokens)')
    .argument('[server]', 'only this server', serverIdArgument)
    .option('--json', 'machine-readable output')
    .action((serverId: string | undefined, options: { json?: boolean }) =>
      withSession(async (session) => {
        const credentials = await agentCredentials(await session.db(), serverId);
        if (options.json === true) {
          printJson(credentials);
          return;
        }
        printTable(
          ['SERVER', 'CREDENTIAL', 'ISSUED', 'REVOKED'],
          credentials.map((credential) => [
            credential.serverId,
            credential.id,
            formatTime(credential.issuedAt),
            credential.revokedAt === null ? '-' : formatTime(credential.revokedAt),
          ]),
        );
      }),
    );
};
