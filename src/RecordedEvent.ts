/**
 * An event as the store gives it back.
 *
 * @since 0.1.0
 */
import type { EventMetadata } from "./EventData.js"

/**
 * A stored event. `streamVersion` counts 1, 2, 3 … within its stream;
 * `position` is its place in the one global log, increasing but not
 * necessarily dense (a rolled-back append leaves a hole that is never filled).
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedEvent {
  readonly eventId: string
  readonly streamId: string
  readonly streamVersion: number
  readonly position: bigint
  readonly eventType: string
  readonly schemaVersion: number
  readonly data: unknown
  readonly metadata: EventMetadata
  readonly recordedAt: Date
  /**
   * Present only on an event whose personal data was erased (`eraseStream`):
   * when that happened. Its `data` is then `null` and its `metadata` keeps only
   * `correlationId` and `causationId`; id, type, versions and position stay, so
   * a projection can tell an erased event from a gap.
   */
  readonly erasedAt?: Date | undefined
}

/**
 * A stream's summary, as listed by `listStreams`.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamInfo {
  readonly streamId: string
  readonly category: string
  readonly version: number
  readonly createdAt: Date
  readonly updatedAt: Date
}
