/**
 * order-emailer's public face: what the bench, the demo and the fault suite build their own order-emailer
 * consumers from. The service itself starts from `dist/main.js`.
 */
export { ConfirmationInProgressError, DEFAULT_RETRY, emailerAgent, OrderConfirmer, type ConfirmOutcome, type EmailerAgentOptions } from './agent.js';
export { DedupeStore, SENT, type Claim, type ClaimResult, type DedupeOptions } from './dedupe.js';
export {
  BODY_EXCERPT_CHARS,
  confirmationEmail,
  EMAIL_FIELD_MAX_CHARS,
  emailText,
  EmailApiUnavailableError,
  EmailClient,
  idempotencyKeyOf,
  type ConfirmationEmail,
  type EmailClientOptions,
} from './emailer.js';
export { parseRetryAfter } from './retry-after.js';
export { OrderEmailerConfig, orderEmailerService, readConfig } from './config.js';
