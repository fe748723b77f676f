/**
 * kafkajs' round-robin assignor, publishing this member's `memberInfo` in its subscription metadata.
 *
 * kafkajs' own assignor sends no userData (roundRobinAssigner/index.js `protocol`). Only `protocol` changes
 * here: the name, the version and the assignment are kafkajs', so members with and without memberInfo (and
 * instances of an older release) still agree on the protocol and split partitions the same way. What a member
 * published comes back for every member from DescribeGroups (KafkaAdmin.describeGroup).
 */
import { AssignerProtocol, PartitionAssigners, type PartitionAssigner } from 'kafkajs';

/** The round-robin assignor with `userData` in this member's metadata. */
export function roundRobinWithUserData(userData: Buffer): PartitionAssigner {
  return (config) => {
    const base = PartitionAssigners.roundRobin(config);
    return {
      name: base.name,
      version: base.version,
      // Called on the base, whose `this.version` it reads.
      assign: (group) => base.assign(group),
      protocol: ({ topics }) => ({
        name: base.name,
        metadata: AssignerProtocol.MemberMetadata.encode({ version: base.version, topics, userData }),
      }),
    };
  };
}
