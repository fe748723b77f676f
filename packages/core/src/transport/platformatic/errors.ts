/** How @platformatic/kafka failures become StreamErrors: cause chains, protocol error ids, fencing. */
import { StreamError, toError, type ErrorContext } from '../../errors.js';
import { errorChain as chainOf } from '../shared.js';

/** The error and its causes (MultipleErrors carries `errors`, ResponseError one ProtocolError per failed partition). */
const errorChain = (error: unknown) => chainOf(error, 50);

/** Kafka protocol error ids (`UNKNOWN_TOPIC_OR_PARTITION`…) found anywhere in the cause chain (`apiId` of ProtocolError). */
export function protocolIds(error: unknown): string[] {
  const ids: string[] = [];
  for (const e of errorChain(error)) if (typeof e.apiId === 'string') ids.push(e.apiId);
  return ids;
}

/** Whether any error of the chain is the protocol error `id`. */
export function hasProtocolError(error: unknown, id: string): boolean {
  return protocolIds(error).includes(id);
}

/** A newer producer with our transactional id took over (PRODUCER_FENCED 90, or INVALID_PRODUCER_EPOCH 47 on older request versions). */
function isFenced(error: unknown): boolean {
  for (const e of errorChain(error)) {
    if (e.apiId === 'INVALID_PRODUCER_EPOCH' || e.apiId === 'PRODUCER_FENCED') return true;
    if (e.errorCode === 47 || e.errorCode === 90) return true;
  }
  return false;
}

/** Protocol errors of a commit from a member the group no longer knows in this generation (KIP-447 zombie). */
const GROUP_FENCED = new Set(['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID', 'FENCED_MEMBER_EPOCH', 'STALE_MEMBER_EPOCH']);

/** At most this many distinct root causes are named in a message. */
const MAX_ROOT_CAUSES = 3;

/**
 * The messages of the errors at the ends of the chain (no cause, no `errors`), each once: what actually went
 * wrong under the client's wrappers ("metadata failed 4 times." > "Cannot connect to any broker." > "Connection
 * to … failed." > "SASL authentication failed." or "self-signed certificate in certificate chain").
 */
function rootCauses(error: unknown): string[] {
  const roots = new Set<string>();
  for (const e of errorChain(error)) {
    const hasCause = e.cause !== null && typeof e.cause === 'object';
    const hasErrors = Array.isArray(e.errors) && e.errors.length > 0;
    if (hasCause || hasErrors || typeof e.message !== 'string') continue;
    const message = e.message.trim().replace(/\.$/, '');
    if (message.length > 0) roots.add(message);
  }
  return [...roots].slice(0, MAX_ROOT_CAUSES);
}

/**
 * Wraps a @platformatic/kafka failure into a `TRANSPORT_FAILED` StreamError, keeping the original as `cause`.
 * The message names the root causes and protocol error ids besides the client's top message, which alone
 * says little ("metadata failed 4 times."). TRANSPORT_FAILED classifies as a `kafka` dependency failure
 * (runtime/classify.ts), as the kafkajs transport's do.
 */
export function transportError(action: string, error: unknown, context: ErrorContext = {}): StreamError {
  if (error instanceof StreamError) return error;
  const cause = toError(error);
  const id = protocolIds(error)[0];
  const detail = [...new Set(protocolIds(error))].join(', ');
  const roots = rootCauses(error).filter((root) => !cause.message.includes(root));
  const described = roots.length > 0 ? `${cause.message.trim().replace(/\.$/, '')}: ${roots.join('; ')}` : cause.message;
  const message = detail.length > 0 && !described.includes(detail) ? `${described} (${detail})` : described;
  if (isFenced(error)) {
    return new StreamError(
      'TRANSPORT_FAILED',
      `${action}: producer fenced: a newer producer with the same transactional id took over (or the broker expired the transaction); this producer cannot be used again (${message})`,
      { cause, context: { ...context, fenced: true, ...(id === undefined ? {} : { kafkaError: id }) } },
    );
  }
  const groupFenced = protocolIds(error).some((e) => GROUP_FENCED.has(e));
  return new StreamError('TRANSPORT_FAILED', `${action}: ${message}`, {
    cause,
    context: { ...context, ...(id === undefined ? {} : { kafkaError: id }), ...(groupFenced ? { groupFenced: true } : {}) },
  });
}

export { topicMissing } from '../kafka/errors.js';
