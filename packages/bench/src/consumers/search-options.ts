/** The search settings both search-enricher consumers use (the service's defaults, on the run's index). */
import type { SearcherOptions } from '@stream/search-enricher';
import type { ConsumerConfig } from '../protocol.js';
import { param } from './service-app.js';

export function searchOptions(config: ConsumerConfig): SearcherOptions {
  return { index: param(config, 'index'), fields: ['title^2', 'body', 'tags'], maxQueryChars: 1000, timeoutMs: 30_000 };
}
