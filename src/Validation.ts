/**
 * Input checks shared by every backend, so that each refuses the same things
 * with the same `InvalidInput`, before anything is written.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { InvalidInput } from "./Errors.js"
import type { EventData } from "./EventData.js"
import type {
  EventFilter,
  ListStreamsOptions,
  ReadAllOptions,
  ReadStreamOptions,
  ScavengeOptions,
  SetStreamMetadataOptions,
  StreamLifecycleOptions,
  StreamMetadataInput,
  SubscribeOptions
} from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as StreamId from "./StreamId.js"

/**
 * An event that passed every check, with its JSON already serialised once.
 *
 * @since 0.1.0
 * @category models
 */
export interface PreparedEvent {
  readonly eventId: string
  readonly eventType: string
  readonly schemaVersion: number
  readonly data: string
  readonly metadata: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PreparedAppend {
  readonly streamId: string
  readonly category: string
  readonly expected: ExpectedVersion.ExpectedVersion
  readonly events: readonly [PreparedEvent, ...Array<PreparedEvent>]
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  /** The largest `data` plus `metadata` of one event, in UTF-8 bytes. */
  readonly maxEventBytes: number
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultLimits: Limits = { maxEventBytes: 1024 * 1024 }

const maxNameLength = 255
const maxDepth = 512
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u001f\u007f]/

const invalid = (field: string, reason: string) => new InvalidInput({ field, reason })

const checkName = (field: string, value: unknown): InvalidInput | undefined => {
  if (typeof value !== "string" || value.length === 0) return invalid(field, "must be a non-empty string")
  if (value.length > maxNameLength) return invalid(field, `must be at most ${maxNameLength} characters`)
  if (controlCharacters.test(value)) return invalid(field, "must not contain control characters")
  if (!value.isWellFormed()) return invalid(field, "must be well-formed Unicode")
  return undefined
}

/**
 * @since 0.1.0
 * @category validation
 */
export const streamId = (value: unknown): Effect.Effect<string, InvalidInput> => {
  const error = checkName("streamId", value)
  return error ? Effect.fail(error) : Effect.succeed(value as string)
}

const describe = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/** Thrown out of a read of the caller's value (a getter or a proxy trap that throws), with where it happened. */
class Unreadable {
  constructor(readonly path: string, readonly cause: unknown) {}
  get reason(): string {
    return `${this.path} could not be read: ${describe(this.cause)}`
  }
}

/** Reads `read()`, turning whatever it throws into an `Unreadable` at `path`. */
const readAt = <A>(path: string, read: () => A): A => {
  try {
    return read()
  } catch (cause) {
    throw cause instanceof Unreadable ? cause : new Unreadable(path, cause)
  }
}

/**
 * Writes `value` as JSON text into `out`, or returns why it is not a JSON
 * value that PostgreSQL's `jsonb` stores and gives back unchanged. One pass
 * that reads every property once, so the text is exactly the value that was
 * checked, even when a getter would answer differently the next time.
 * Arrays are their elements and objects their own enumerable string-keyed
 * properties, as in JSON; `toJSON` is never called. `JSON.stringify` alone
 * would silently drop functions, turn `NaN` into `null` and `-0` into `0`,
 * call `toJSON`, and throw on bigints and cycles.
 */
const writeJson = (
  value: unknown,
  path: string,
  out: Array<string>,
  ancestors: Set<object>,
  depth: number
): string | undefined => {
  switch (typeof value) {
    case "string":
      if (value.includes("\u0000")) return `${path} contains a NUL character, which jsonb cannot store`
      if (!value.isWellFormed()) return `${path} is not well-formed Unicode (lone surrogate)`
      out.push(JSON.stringify(value))
      return undefined
    case "boolean":
      out.push(value ? "true" : "false")
      return undefined
    case "number":
      if (!Number.isFinite(value)) return `${path} is ${value}, which JSON cannot represent`
      // JSON has no negative zero: it would read back as 0.
      if (Object.is(value, -0)) return `${path} is -0, which JSON cannot represent (it would read back as 0)`
      out.push(String(value))
      return undefined
    case "object": {
      if (value === null) {
        out.push("null")
        return undefined
      }
      if (depth > maxDepth) return `${path} is nested deeper than ${maxDepth} levels`
      if (ancestors.has(value)) return `${path} is a circular reference`
      const isArray = readAt(path, () => Array.isArray(value))
      const proto: unknown = readAt(path, () => Object.getPrototypeOf(value))
      if (!isArray && proto !== Object.prototype && proto !== null) {
        const name = readAt(path, () => (value as { constructor?: { name?: unknown } }).constructor?.name)
        return `${path} is a ${typeof name === "string" ? name : "non-plain object"}; encode it to JSON first`
      }
      ancestors.add(value)
      // One try per level: a property that throws when read is reported at its own path.
      let at = path
      try {
        if (isArray) {
          // Only the elements, as JSON has them: other properties (a `toJSON`, say) are not read.
          const array = value as ReadonlyArray<unknown>
          const length = array.length
          out.push("[")
          for (let i = 0; i < length; i++) {
            at = `${path}[${i}]`
            const element: unknown = array[i]
            if (element === undefined) return `${at} is undefined`
            if (i > 0) out.push(",")
            const problem = writeJson(element, at, out, ancestors, depth + 1)
            if (problem) return problem
          }
          out.push("]")
        } else {
          const record = value as Record<string, unknown>
          const keys = Object.keys(record)
          out.push("{")
          let first = true
          for (const key of keys) {
            at = `${path}.${key}`
            const property: unknown = record[key]
            // An undefined property is left out, as JSON.stringify does: optional fields are common.
            if (property === undefined) continue
            if (key.includes("\u0000") || !key.isWellFormed()) return `${path} has a key that jsonb cannot store`
            if (!first) out.push(",")
            first = false
            out.push(JSON.stringify(key), ":")
            const problem = writeJson(property, at, out, ancestors, depth + 1)
            if (problem) return problem
          }
          out.push("}")
        }
        return undefined
      } catch (cause) {
        throw cause instanceof Unreadable ? cause : new Unreadable(at, cause)
      } finally {
        ancestors.delete(value)
      }
    }
    case "undefined":
      return `${path} is undefined`
    default:
      return `${path} is a ${typeof value}, which JSON cannot represent`
  }
}

const toJson = (field: string, value: unknown): InvalidInput | string => {
  const out: Array<string> = []
  try {
    const problem = writeJson(value, field, out, new Set(), 0)
    return problem ? invalid(field, problem) : out.join("")
  } catch (cause) {
    if (cause instanceof Unreadable) return invalid(field, cause.reason)
    throw cause
  }
}

/**
 * Runs `check`, which reads a value the caller handed in: a getter or a proxy
 * trap that throws on the way is bad input at `field`, not a defect.
 */
const guarded = <A>(field: string, check: () => A | InvalidInput): A | InvalidInput => {
  try {
    return check()
  } catch (cause) {
    return invalid(field, cause instanceof Unreadable ? cause.reason : `${field} could not be read: ${describe(cause)}`)
  }
}

/**
 * `value` as JSON text, if it is a JSON value that PostgreSQL's `jsonb` stores
 * and gives back unchanged: the rule for event data, metadata, stream metadata's
 * `custom` and snapshot states. Every property is read once; a getter or a
 * proxy that throws is an `InvalidInput`.
 *
 * @since 0.1.0
 * @category validation
 */
export const json = (field: string, value: unknown): Effect.Effect<string, InvalidInput> =>
  Effect.suspend(() => {
    const result = toJson(field, value)
    return typeof result === "string" ? Effect.succeed(result) : Effect.fail(result)
  })

/**
 * Runs `check` on input the caller handed in, so that a getter or a proxy trap
 * that throws while it is read becomes an `InvalidInput` at `field`.
 *
 * @since 0.1.0
 * @category validation
 */
export const readInput = <A>(field: string, check: () => Effect.Effect<A, InvalidInput>): Effect.Effect<A, InvalidInput> =>
  Effect.suspend(() => {
    const result = guarded(field, check)
    return result instanceof InvalidInput ? Effect.fail(result) : result
  })

/**
 * A time-ordered UUID (version 7): new ids land at the right edge of the
 * unique index instead of all over it, which keeps inserts into a large
 * events table cheap.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeEventId = (): string => {
  const random = crypto.randomUUID()
  const time = Date.now().toString(16).padStart(12, "0")
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.slice(15, 18)}-${random.slice(19, 23)}-${random.slice(24)}`
}

const prepareEvent = (
  event: EventData,
  index: number,
  limits: Limits
): InvalidInput | PreparedEvent => {
  const at = `events[${index}]`
  if (typeof event !== "object" || event === null) return invalid(at, "must be an object")
  return guarded(at, () => {
    const { data: dataValue, eventId: eventIdValue, eventType, metadata: givenMetadata, schemaVersion: givenSchemaVersion } =
      event
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
    if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > 2_147_483_647) {
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
 *
 * @since 0.1.0
 * @category validation
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
 *
 * @since 0.1.0
 * @category validation
 */
export const streamLifecycle = (
  streamIdValue: string,
  options: StreamLifecycleOptions | undefined
): Effect.Effect<{ readonly streamId: string; readonly expected: ExpectedVersion.ExpectedVersion }, InvalidInput> =>
  Effect.suspend(() => {
    const streamError = checkName("streamId", streamIdValue)
    if (streamError) return Effect.fail(streamError)
    const expected = checkExpectedVersion(options?.expectedVersion)
    return expected instanceof InvalidInput ? Effect.fail(expected) : Effect.succeed({ streamId: streamIdValue, expected })
  })

/**
 * Stream metadata that passed every check, ready to store. Settings that are
 * not set are `null`; `custom` is JSON text.
 *
 * @since 0.1.0
 * @category models
 */
export interface PreparedMetadata {
  readonly streamId: string
  readonly category: string
  readonly expected: "any" | number
  readonly maxCount: number | null
  readonly maxAgeMillis: number | null
  readonly truncateBefore: number | null
  readonly custom: string
}

const metadataKeys = new Set(["maxCount", "maxAge", "truncateBefore", "custom"])

/**
 * Checks a `setStreamMetadata` call: positive integer `maxCount`, a positive
 * whole number of milliseconds for `maxAge`, a non-negative integer
 * `truncateBefore`, a JSON object `custom` within `maxEventBytes`, and no other keys.
 *
 * @since 0.1.0
 * @category validation
 */
export const prepareMetadata = (
  streamIdValue: string,
  metadata: StreamMetadataInput,
  options: SetStreamMetadataOptions | undefined,
  limits: Limits
): Effect.Effect<PreparedMetadata, InvalidInput> =>
  readInput("metadata", () => {
    const streamError = checkName("streamId", streamIdValue)
    if (streamError) return Effect.fail(streamError)
    const expected = options?.expectedMetadataVersion ?? "any"
    if (expected !== "any" && !(typeof expected === "number" && Number.isSafeInteger(expected) && expected >= 0)) {
      return Effect.fail(invalid("expectedMetadataVersion", `must be "any" or a non-negative integer`))
    }
    if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
      return Effect.fail(invalid("metadata", "must be an object"))
    }
    for (const key of Object.keys(metadata)) {
      if (!metadataKeys.has(key)) {
        return Effect.fail(invalid(`metadata.${key}`, "is not a setting: use maxCount, maxAge, truncateBefore or custom"))
      }
    }
    const { custom: customValue, maxAge, maxCount, truncateBefore } = metadata
    if (maxCount !== undefined && !(Number.isSafeInteger(maxCount) && maxCount >= 1)) {
      return Effect.fail(invalid("metadata.maxCount", "must be a positive integer"))
    }
    if (truncateBefore !== undefined && !(Number.isSafeInteger(truncateBefore) && truncateBefore >= 0)) {
      return Effect.fail(invalid("metadata.truncateBefore", "must be a non-negative integer"))
    }
    let maxAgeMillis: number | null = null
    if (maxAge !== undefined) {
      const millis = Option.map(Duration.decodeUnknown(maxAge), Duration.toMillis)
      if (Option.isNone(millis) || !Number.isSafeInteger(millis.value) || millis.value < 1) {
        return Effect.fail(invalid("metadata.maxAge", "must be a positive, finite duration in whole milliseconds"))
      }
      maxAgeMillis = millis.value
    }
    const customObject: unknown = customValue === undefined ? {} : customValue
    if (typeof customObject !== "object" || customObject === null || Array.isArray(customObject)) {
      return Effect.fail(invalid("metadata.custom", "must be a JSON object"))
    }
    const custom = toJson("metadata.custom", customObject)
    if (typeof custom !== "string") return Effect.fail(custom)
    const bytes = Buffer.byteLength(custom)
    if (bytes > limits.maxEventBytes) {
      return Effect.fail(invalid("metadata.custom", `is ${bytes} bytes, over the limit of ${limits.maxEventBytes}`))
    }
    return Effect.succeed({
      streamId: streamIdValue,
      category: StreamId.category(streamIdValue),
      expected,
      maxCount: maxCount ?? null,
      maxAgeMillis,
      truncateBefore: truncateBefore ?? null,
      custom
    })
  })

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultScavengeBatchSize = 1000

/**
 * @since 0.1.0
 * @category validation
 */
export const scavengeOptions = (options: ScavengeOptions | undefined) =>
  Effect.all({
    batchSize: positiveInt("batchSize", options?.batchSize, defaultScavengeBatchSize, maxBatchSize)
  })

const includeArchived = (value: boolean | undefined) =>
  value === undefined || typeof value === "boolean"
    ? Effect.succeed(value ?? false)
    : Effect.fail(invalid("includeArchived", "must be true or false"))

/**
 * @since 0.1.0
 * @category validation
 */
export const positiveInt = (field: string, value: number | undefined, fallback: number, max = Number.MAX_SAFE_INTEGER) =>
  value === undefined
    ? Effect.succeed(fallback)
    : Number.isSafeInteger(value) && value >= 1 && value <= max
    ? Effect.succeed(value)
    : Effect.fail(invalid(field, `must be an integer from 1 to ${max}`))

/**
 * @since 0.1.0
 * @category validation
 */
export const nonNegativeInt = (field: string, value: number) =>
  Number.isSafeInteger(value) && value >= 0
    ? Effect.succeed(value)
    : Effect.fail(invalid(field, "must be a non-negative integer"))

/**
 * @since 0.1.0
 * @category validation
 */
export const names = (field: string, values: ReadonlyArray<string> | undefined) =>
  Effect.suspend(() => {
    if (values === undefined) return Effect.succeed(undefined)
    if (!Array.isArray(values) || values.length === 0) {
      return Effect.fail(invalid(field, "must be a non-empty array when given"))
    }
    for (const value of values) {
      const error = checkName(field, value)
      if (error) return Effect.fail(error)
    }
    return Effect.succeed(values as ReadonlyArray<string>)
  })

/**
 * The largest global position: PostgreSQL's `bigint`.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxPosition = 2n ** 63n - 1n

/**
 * @since 0.1.0
 * @category validation
 */
export const position = (field: string, value: unknown): Effect.Effect<bigint, InvalidInput> =>
  typeof value === "bigint" && value >= 0n && value <= maxPosition
    ? Effect.succeed(value)
    : Effect.fail(invalid(field, `must be a bigint from 0 to ${maxPosition}`))

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultBatchSize = 500

/**
 * @since 0.1.0
 * @category constants
 */
export const maxBatchSize = 10_000

/**
 * How `subscribe` retries a failed read unless told otherwise: forever,
 * backing off exponentially from 100 ms to at most 5 seconds, with jitter so
 * that the subscribers of a restarted server do not all come back at once.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultSubscribeRetry: Schedule.Schedule<unknown> = Schedule.exponential(Duration.millis(100)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(5))),
  Schedule.jittered
)

/**
 * Read options with their defaults resolved and checked.
 *
 * @since 0.1.0
 * @category validation
 */
export const readStreamOptions = (options: ReadStreamOptions | undefined) =>
  Effect.all({
    direction: options?.direction === undefined || options.direction === "forward" || options.direction === "backward"
      ? Effect.succeed(options?.direction ?? "forward")
      : Effect.fail(invalid("direction", `must be "forward" or "backward"`)),
    from: options?.from === undefined ? Effect.succeed(undefined) : nonNegativeInt("from", options.from),
    limit: positiveInt("limit", options?.limit, Number.MAX_SAFE_INTEGER),
    batchSize: positiveInt("batchSize", options?.batchSize, defaultBatchSize, maxBatchSize)
  })

/**
 * @since 0.1.0
 * @category validation
 */
export const readAllOptions = (options: ReadAllOptions | undefined) =>
  Effect.all({
    from: options?.from === undefined ? Effect.succeed(0n) : position("from", options.from),
    limit: positiveInt("limit", options?.limit, Number.MAX_SAFE_INTEGER),
    batchSize: positiveInt("batchSize", options?.batchSize, defaultBatchSize, maxBatchSize),
    filter: eventFilter(options?.filter),
    includeArchived: includeArchived(options?.includeArchived)
  })

/**
 * An event filter, checked, with sets for matching in memory.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedFilter {
  readonly eventTypes: ReadonlyArray<string> | undefined
  readonly categories: ReadonlyArray<string> | undefined
  readonly streamIds: ReadonlyArray<string> | undefined
}

/**
 * @since 0.1.0
 * @category validation
 */
export const eventFilter = (filter: EventFilter | undefined): Effect.Effect<ResolvedFilter, InvalidInput> =>
  Effect.all({
    eventTypes: names("filter.eventTypes", filter?.eventTypes),
    categories: names("filter.categories", filter?.categories),
    streamIds: names("filter.streamIds", filter?.streamIds)
  })

/**
 * Whether an event passes a filter: every given criterion must hold.
 *
 * @since 0.1.0
 * @category filtering
 */
export const matches = (filter: ResolvedFilter) => {
  const types = filter.eventTypes && new Set(filter.eventTypes)
  const categories = filter.categories && new Set(filter.categories)
  const streams = filter.streamIds && new Set(filter.streamIds)
  return (event: { readonly eventType: string; readonly streamId: string }): boolean =>
    (types === undefined || types.has(event.eventType)) &&
    (categories === undefined || categories.has(StreamId.category(event.streamId))) &&
    (streams === undefined || streams.has(event.streamId))
}

/**
 * @since 0.1.0
 * @category validation
 */
export const subscribeOptions = (options: SubscribeOptions | undefined) =>
  Effect.all({
    from: options?.from === undefined
      ? Effect.succeed<bigint | "end">(0n)
      : options.from === "end"
      ? Effect.succeed<bigint | "end">("end")
      : position("from", options.from),
    batchSize: positiveInt("batchSize", options?.batchSize, defaultBatchSize, maxBatchSize),
    filter: eventFilter(options?.filter),
    includeArchived: includeArchived(options?.includeArchived),
    retry: Effect.succeed(options?.retry ?? defaultSubscribeRetry)
  })

/**
 * @since 0.1.0
 * @category validation
 */
export const listStreamsOptions = (options: ListStreamsOptions | undefined) =>
  Effect.all({
    category: options?.category === undefined
      ? Effect.succeed(undefined)
      : Effect.as(names("category", [options.category]), options.category),
    after: options?.after === undefined ? Effect.succeed(undefined) : streamId(options.after),
    limit: positiveInt("limit", options?.limit, Number.MAX_SAFE_INTEGER),
    batchSize: positiveInt("batchSize", options?.batchSize, defaultBatchSize, maxBatchSize)
  })
