import { defineConfig } from 'vitest/config';

// Lets `pnpm exec vitest` at the root (and editors) see every package; `pnpm test` goes through turbo.
export default defineConfig({ test: { projects: ['packages/*', 'services/*'] } });
