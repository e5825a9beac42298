/**
 * A stream's metadata as every backend stores it, and the public
 * `StreamMetadata` made from it, the same on every backend.
 */
import * as Duration from "effect/Duration"
import type { StreamMetadata } from "../../EventStore.js"
import * as StreamId from "../../StreamId.js"

/** The stored settings of a stream's metadata: `null` for a setting that is not set. */
export interface StoredMetadata {
  readonly metadataVersion: number
  readonly maxCount: number | null
  readonly maxAgeMillis: number | null
  readonly truncateBefore: number | null
  readonly custom: StreamMetadata["custom"]
  readonly category: string
  /** When the live stream got its first event; `null` while it has none (or is deleted). */
  readonly createdAt: Date | null
}

/** The metadata of a stream, from what is stored (or nothing at all). */
export const fromStored = (stored: StoredMetadata): StreamMetadata => ({
  metadataVersion: stored.metadataVersion,
  ...(stored.maxCount === null ? {} : { maxCount: stored.maxCount }),
  ...(stored.maxAgeMillis === null ? {} : { maxAge: Duration.millis(stored.maxAgeMillis) }),
  ...(stored.truncateBefore === null ? {} : { truncateBefore: stored.truncateBefore }),
  custom: stored.custom,
  category: stored.category,
  ...(stored.createdAt === null ? {} : { createdAt: stored.createdAt })
})

/** The metadata of a stream that has never had any written. */
export const none = (streamId: string): StreamMetadata => ({
  metadataVersion: 0,
  custom: {},
  category: StreamId.category(streamId)
})
