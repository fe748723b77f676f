/** How kafkajs failures become StreamErrors: cause chains, protocol error types, fencing, missing topics. */
import { StreamError, toError, type ErrorContext } from '../../errors.js';
import { errorChain as chainOf } from '../shared.js';

/**
 * The error and its causes (kafkajs wraps: NumberOfRetriesExceeded → NonRetriable → ProtocolError;
 * KafkaJSAggregateError from createTopics carries several).
 */
const errorChain = (error: unknown) => chainOf(error, 20);

/** kafkajs protocol error types (`UNKNOWN_TOPIC_OR_PARTITION`…) found anywhere in the cause chain. */
export function protocolTypes(error: unknown): string[] {
  const types: string[] = [];
  for (const e of errorChain(error)) if (typeof e.type === 'string') types.push(e.type);
  return types;
}

/**
 * A newer producer with our transactional id took over. kafkajs 2.2.4 knows INVALID_PRODUCER_EPOCH (47);
 * PRODUCER_FENCED (90, newer brokers and request versions) is unknown to it and arrives as
 * KAFKAJS_UNKNOWN_ERROR_CODE with `code: 90`, so both are recognised by code too.
 */
function isFenced(error: unknown): boolean {
  for (const e of errorChain(error)) {
    if (e.type === 'INVALID_PRODUCER_EPOCH' || e.type === 'PRODUCER_FENCED') return true;
    if (e.code === 47 || e.code === 90) return true;
  }
  return false;
}

/** Wraps a kafkajs failure into a `TRANSPORT_FAILED` StreamError, keeping the original as `cause`. */
export function transportError(action: string, error: unknown, context: ErrorContext = {}): StreamError {
  if (error instanceof StreamError) return error;
  const cause = toError(error);
  const type = protocolTypes(error)[0];
  if (isFenced(error)) {
    return new StreamError(
      'TRANSPORT_FAILED',
      `${action}: producer fenced: a newer producer with the same transactional id took over (or the broker expired the transaction); this producer cannot be used again (${cause.message})`,
      { cause, context: { ...context, fenced: true, ...(type === undefined ? {} : { kafkaError: type }) } },
    );
  }
  return new StreamError('TRANSPORT_FAILED', `${action}: ${cause.message}`, {
    cause,
    context: { ...context, ...(type === undefined ? {} : { kafkaError: type }) },
  });
}

/** TOPIC_MISSING for topics the broker does not have, with how to create them. */
export function topicMissing(topics: readonly string[], action: string): StreamError {
  const list = topics.join(', ');
  return new StreamError(
    'TOPIC_MISSING',
    `${action}: topic${topics.length > 1 ? 's' : ''} ${list} ${topics.length > 1 ? 'do' : 'does'} not exist (the broker does not create topics on use): ` +
      `create ${topics.length > 1 ? 'them' : 'it'} first, e.g. \`kafka-topics.sh --bootstrap-server <broker> --create --topic ${topics[0] ?? ''} --partitions <n>\`, ` +
      `or start the app with \`createTopics: true\``,
    { context: { topics: list } },
  );
}
