/**
 * Appends and the lifecycle's expected versions: everything that can be
 * checked without the database, with the JSON serialised once.
 */
import * as Effect from "effect/Effect"
import { InvalidInput } from "../../Errors.js"
import { type EventData, makeEventId } from "../../EventData.js"
import type { StreamLifecycleOptions } from "../../EventStore.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import * as StreamId from "../../StreamId.js"
import { guarded, readInput, toJson } from "./json.js"
import { type Limits, maxSchemaVersion } from "./limits.js"
import { checkName, invalid } from "./names.js"

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * An event that passed every check, with its JSON already serialised once.
 */
export interface PreparedEvent {
  readonly eventId: string
  readonly eventType: string
  readonly schemaVersion: number
  readonly data: string
  readonly metadata: string
}

export interface PreparedAppend {
  readonly streamId: string
  readonly category: string
  readonly expected: ExpectedVersion.ExpectedVersion
  readonly events: readonly [PreparedEvent, ...Array<PreparedEvent>]
}

const prepareEvent = (
  event: EventData,
  index: number,
  limits: Limits
): InvalidInput | PreparedEvent => {
  const at = `events[${index}]`
  if (typeof event !== "object" || event === null) return invalid(at, "must be an object")
  return guarded(at, () => {
    const {
      data: dataValue,
      eventId: eventIdValue,
      eventType,
      metadata: givenMetadata,
      schemaVersion: givenSchemaVersion
    } = event
    let eventId: string
    if (eventIdValue === undefined) {
      eventId = makeEventId()
    } else if (typeof eventIdValue === "string" && uuidPattern.test(eventIdValue)) {
      eventId = eventIdValue.toLowerCase()
    } else {
      return invalid(`${at}.eventId`, "must be a UUID such as 0190f5a2-7c1e-7a3b-9d1e-2f3a4b5c6d7e")
    }
    const typeError = checkName(`${at}.eventType`, eventType)
    if (typeError) return typeError
    const schemaVersion = givenSchemaVersion ?? 1
    if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > maxSchemaVersion) {
      return invalid(`${at}.schemaVersion`, "must be a positive integer")
    }
    const data = toJson(`${at}.data`, dataValue)
    if (typeof data !== "string") return data
    const metadataValue: unknown = givenMetadata ?? {}
    if (typeof metadataValue !== "object" || metadataValue === null || Array.isArray(metadataValue)) {
      return invalid(`${at}.metadata`, "must be an object")
    }
    const metadata = toJson(`${at}.metadata`, metadataValue)
    if (typeof metadata !== "string") return metadata
    // Checked on what is stored, not by reading the caller's object again.
    const ids = JSON.parse(metadata) as Record<string, unknown>
    for (const key of ["correlationId", "causationId"] as const) {
      const id = ids[key]
      if (id !== undefined && typeof id !== "string") return invalid(`${at}.metadata.${key}`, "must be a string")
    }
    const bytes = Buffer.byteLength(data) + Buffer.byteLength(metadata)
    if (bytes > limits.maxEventBytes) {
      return invalid(at, `is ${bytes} bytes of data and metadata, over the limit of ${limits.maxEventBytes}`)
    }
    return { eventId, eventType: eventType as string, schemaVersion, data, metadata }
  })
}

/**
 * Checks everything about an append that can be checked without the database.
 */
export const prepareAppend = (
  streamIdValue: string,
  events: ReadonlyArray<EventData>,
  expected: ExpectedVersion.ExpectedVersion | undefined,
  limits: Limits
): Effect.Effect<PreparedAppend, InvalidInput> =>
  readInput("events", () => {
    const streamError = checkName("streamId", streamIdValue)
    if (streamError) return Effect.fail(streamError)
    const expectedVersion = checkExpectedVersion(expected)
    if (expectedVersion instanceof InvalidInput) return Effect.fail(expectedVersion)
    if (!Array.isArray(events) || events.length === 0) {
      return Effect.fail(invalid("events", "must be a non-empty array"))
    }
    const prepared: Array<PreparedEvent> = []
    const seen = new Set<string>()
    for (let i = 0; i < events.length; i++) {
      const event = prepareEvent(events[i] as EventData, i, limits)
      if (event instanceof InvalidInput) return Effect.fail(event)
      if (seen.has(event.eventId)) {
        return Effect.fail(invalid(`events[${i}].eventId`, `${event.eventId} appears twice in one append`))
      }
      seen.add(event.eventId)
      prepared.push(event)
    }
    return Effect.succeed({
      streamId: streamIdValue,
      category: StreamId.category(streamIdValue),
      expected: expectedVersion,
      events: prepared as unknown as PreparedAppend["events"]
    })
  })

const checkExpectedVersion = (
  expected: ExpectedVersion.ExpectedVersion | undefined
): ExpectedVersion.ExpectedVersion | InvalidInput => {
  const value = expected ?? ExpectedVersion.any
  if (
    typeof value === "number"
      ? !Number.isSafeInteger(value) || value < 0
      : !["any", "no_stream", "stream_exists"].includes(value)
  ) {
    return invalid("expectedVersion", `must be "any", "no_stream", "stream_exists" or a non-negative integer`)
  }
  // Version 0 is "no events yet": one rule instead of two spellings of it.
  return value === 0 ? ExpectedVersion.noStream : value
}

/**
 * The stream and expected version of a soft delete, tombstone or archive.
 */
export const streamLifecycle = (
  streamIdValue: string,
  options: StreamLifecycleOptions | undefined
): Effect.Effect<{ readonly streamId: string; readonly expected: ExpectedVersion.ExpectedVersion }, InvalidInput> =>
  Effect.suspend(() => {
    const streamError = checkName("streamId", streamIdValue)
    if (streamError) return Effect.fail(streamError)
    const expected = checkExpectedVersion(options?.expectedVersion)
    return expected instanceof InvalidInput
      ? Effect.fail(expected)
      : Effect.succeed({ streamId: streamIdValue, expected })
  })
