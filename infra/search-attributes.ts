/** Registers the project's custom search attributes on the cluster when they are missing. */
import type { ConnectionLike } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { ALL_SEARCH_ATTRIBUTES } from '../domain/search-attributes';
import type { Logger } from './logger';

export const ensureSearchAttributes = async (
  connection: ConnectionLike,
  namespace: string,
  logger: Logger,
): Promise<void> => {
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const known = new Set(Object.keys(existing.customAttributes ?? {}));
  const missing = ALL_SEARCH_ATTRIBUTES.filter((key) => !known.has(key.name));
  if (missing.length === 0) return;
  await connection.operatorService.addSearchAttributes({
    namespace,
    searchAttributes: Object.fromEntries(
      missing.map((key) => [key.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD]),
    ),
  });
  logger.info({ searchAttributes: missing.map((key) => key.name) }, 'Search attributes registered');
};
