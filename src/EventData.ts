/**
 * What a writer hands to `append`.
 *
 * @since 0.1.0
 */

/**
 * Metadata stored beside every event. `correlationId` and `causationId` are
 * the store's own keys; any other JSON-serialisable key is the caller's.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventMetadata {
  readonly correlationId?: string | undefined
  readonly causationId?: string | undefined
  readonly [key: string]: unknown
}

/**
 * An event to append.
 *
 * - `eventId`: a UUID; generated when absent. Give one to make retries
 *   idempotent: appending the same ids again at the same place stores nothing.
 * - `data`: a JSON value (plain objects, arrays, strings, finite numbers,
 *   booleans, null). Encode richer values first, for example with `Schema`.
 * - `schemaVersion`: the version of the event type's schema the data is
 *   encoded with (default 1).
 *
 * @since 0.1.0
 * @category models
 */
export interface EventData {
  readonly eventId?: string | undefined
  readonly eventType: string
  readonly schemaVersion?: number | undefined
  readonly data: unknown
  readonly metadata?: EventMetadata | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  eventType: string,
  data: unknown,
  options?: {
    readonly eventId?: string | undefined
    readonly schemaVersion?: number | undefined
    readonly metadata?: EventMetadata | undefined
  }
): EventData => ({ eventType, data, ...options })

/**
 * A new event id: a time-ordered UUID (version 7), so that new ids land at
 * the right edge of the unique index instead of all over it, which keeps
 * inserts into a large events table cheap. Give an append its ids up front
 * (`{ eventId: EventData.makeEventId(), … }`) to make a retry of it after an
 * unknown outcome safe.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeEventId = (): string => {
  const random = crypto.randomUUID()
  const time = Date.now().toString(16).padStart(12, "0")
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.slice(15, 18)}-${random.slice(19, 23)}-${random.slice(24)}`
}
