/**
 * The limits every backend enforces, each defined once.
 */

/** What a store instance lets through. */
export interface Limits {
  /** The largest `data` plus `metadata` of one event, in UTF-8 bytes. */
  readonly maxEventBytes: number
}

export const defaultLimits: Limits = { maxEventBytes: 1024 * 1024 }

/** The longest stream id, event type, category or checkpoint name, in UTF-16 code units. */
export const maxNameLength = 255

/** How deep JSON may nest. */
export const maxDepth = 512

/** The largest schema version: PostgreSQL's `integer`. */
export const maxSchemaVersion = 2_147_483_647

/** The largest global position: PostgreSQL's `bigint`. */
export const maxPosition = 2n ** 63n - 1n

/** Events (or streams) fetched per round trip unless told otherwise. */
export const defaultBatchSize = 500

/** The most events (or streams) fetched per round trip. */
export const maxBatchSize = 10_000

/** Events removed per transaction by `scavenge` unless told otherwise. */
export const defaultScavengeBatchSize = 1000
