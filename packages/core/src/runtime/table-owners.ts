import { StreamError, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import { advertisedUrlOf } from '../ops/advertise.js';
import type { GroupDescription, Transport, TransportAdmin } from '../transport/transport.js';

/** How long a description of the group answers owner questions: table queries must not each cost a DescribeGroups. */
const DESCRIPTION_TTL_MS = 1000;

/** Who owns a partition of a consumed topic, as the group's coordinator says. */
export type PartitionOwner =
  /** Another member, and the address it advertised. */
  | { readonly kind: 'member'; readonly memberId: string; readonly url: string }
  /** A member owns it but advertised no (usable) address: it runs without one, or an older release. */
  | { readonly kind: 'no-address'; readonly memberId: string }
  /**
   * Nobody now: the group rebalances, no member has it, or the coordinator names this instance before it
   * heard its own assignment. Asking again shortly helps.
   */
  | { readonly kind: 'none'; readonly reason: string };

/**
 * Finds the owners of partitions of the app's group and the addresses they advertised, for table queries
 * this instance cannot answer itself. It asks the coordinator (DescribeGroups: every member's assignment and
 * the memberInfo it published) rather than trusting what this member heard: a member only learns its own
 * share. A description is reused for {@link DESCRIPTION_TTL_MS}, and dropped as soon as this member hears a
 * rebalance (its own revoke or assignment), since every other share changes with it.
 */
export class PartitionOwners {
  readonly #transport: Transport;
  readonly #groupId: string;
  readonly #self: string | undefined;
  readonly #log: Logger;
  #admin: Promise<TransportAdmin> | undefined;
  #description: { readonly at: number; readonly value: Promise<GroupDescription> } | undefined;
  #closed = false;

  constructor(transport: Transport, groupId: string, selfUrl: string | undefined, log: Logger) {
    this.#transport = transport;
    this.#groupId = groupId;
    this.#self = selfUrl;
    this.#log = log;
  }

  /** The group changed (this member heard a revoke or an assignment): the next question asks again. */
  invalidate(): void {
    this.#description = undefined;
  }

  /** The owner of the first of `topics` whose `partition` some member holds (co-partitioned topics of one table). */
  async owner(topics: readonly string[], partition: number): Promise<PartitionOwner> {
    const group = await this.#describe();
    if (group.state !== 'stable') return { kind: 'none', reason: `group ${this.#groupId} is ${group.state}` };
    for (const topic of topics) {
      const member = group.members.find((m) => m.assignment.some((tp) => tp.topic === topic && tp.partition === partition));
      if (!member) continue;
      const url = advertisedUrlOf(member.memberInfo);
      if (url === undefined) return { kind: 'no-address', memberId: member.memberId };
      // The coordinator names this instance, which does not hold the partition (yet): its assignment is on
      // its way. Redirecting to ourselves would loop.
      if (url === this.#self) return { kind: 'none', reason: 'this instance is being assigned the partition' };
      return { kind: 'member', memberId: member.memberId, url };
    }
    return { kind: 'none', reason: 'no member of the group holds the partition' };
  }

  #describe(): Promise<GroupDescription> {
    const now = Date.now();
    const cached = this.#description;
    if (cached && now - cached.at < DESCRIPTION_TTL_MS) return cached.value;
    const value = this.#adminClient().then((admin) => admin.describeGroup(this.#groupId));
    const entry = { at: now, value };
    this.#description = entry;
    // A failure is not kept: the next question asks again (the admin client is made anew).
    value.catch((error: unknown) => {
      if (this.#description === entry) this.#description = undefined;
      const admin = this.#admin;
      this.#admin = undefined;
      void admin?.then((a) => a.disconnect()).catch(() => undefined);
      this.#log.warn({ err: toError(error) }, 'describing the group for a table query failed');
    });
    return value;
  }

  #adminClient(): Promise<TransportAdmin> {
    if (this.#closed) return Promise.reject(new StreamError('ABORTED', 'the app is stopping'));
    this.#admin ??= (async () => {
      const admin = this.#transport.admin();
      await admin.connect();
      return admin;
    })();
    return this.#admin;
  }

  /** Disconnects the admin client, if one was made. */
  async close(): Promise<void> {
    this.#closed = true;
    const admin = this.#admin;
    this.#admin = undefined;
    await admin?.then((a) => a.disconnect()).catch(() => undefined);
  }
}
