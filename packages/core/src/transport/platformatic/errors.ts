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

/**
 * Wraps a @platformatic/kafka failure into a `TRANSPORT_FAILED` StreamError, keeping the original as `cause`.
 * TRANSPORT_FAILED classifies as a `kafka` dependency failure (runtime/classify.ts), as the kafkajs transport's do.
 */
export function transportError(action: string, error: unknown, context: ErrorContext = {}): StreamError {
  if (error instanceof StreamError) return error;
  const cause = toError(error);
  const id = protocolIds(error)[0];
  const detail = [...new Set(protocolIds(error))].join(', ');
  const message = detail.length > 0 && !cause.message.includes(detail) ? `${cause.message} (${detail})` : cause.message;
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
