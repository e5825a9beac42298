/**
 * A set of event types: the events of a stream, an aggregate or a module, with
 * their decoded union type. The registry is the one place where stored events
 * become typed events (`decode`, `decodeStream`) and typed events become
 * stored events (`encode`): every reader — stream reads, `readAll`,
 * subscriptions, projections — goes through `decode`, so none can forget to
 * upcast.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { EventRegistry, EventType } from "effect-event-store"
 *
 * const AccountOpened = EventType.make("AccountOpened", { schema: Schema.Struct({ owner: Schema.String }) })
 * const MoneyDeposited = EventType.make("MoneyDeposited", { schema: Schema.Struct({ amount: Schema.Int }) })
 *
 * const BankEvents = EventRegistry.make(AccountOpened, MoneyDeposited)
 * // { type: "AccountOpened", data: { owner: string } } | { type: "MoneyDeposited", data: { amount: number } }
 * type BankEvent = EventRegistry.Event<typeof BankEvents>
 *
 * const deposited: BankEvent = MoneyDeposited.make({ amount: 100 })
 * assert.deepStrictEqual(BankEvents.names, ["AccountOpened", "MoneyDeposited"])
 * ```
 *
 * @since 0.1.0
 */
import * as Arr from "effect/Array"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import type * as Types from "effect/Types"
import { EventDecodeError, InvalidInput } from "../Errors.js"
import type { EventData, EventMetadata } from "../EventData.js"
import * as Validation from "../internal/validation/index.js"
import { maxSchemaVersion } from "../internal/validation/limits.js"
import type { RecordedEvent } from "../RecordedEvent.js"
import * as EventType from "./EventType.js"

/**
 * @since 0.1.0
 * @category symbols
 */
export const TypeId: unique symbol = Symbol.for("effect-event-store/EventRegistry")

/**
 * @since 0.1.0
 * @category symbols
 */
export type TypeId = typeof TypeId

/**
 * A checked set of event types whose events decode to `E`.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventRegistry<E extends EventType.Event> {
  readonly [TypeId]: { readonly _E: Types.Covariant<E> }
  /** The event types by name. */
  readonly types: ReadonlyMap<string, EventType.Any>
  /** The names of the event types, in the order they were given. */
  readonly names: readonly [string, ...Array<string>]
}

/**
 * The decoded event union of a registry.
 *
 * @since 0.1.0
 * @category type-level
 */
export type Event<R> = R extends EventRegistry<infer E> ? E : never

/**
 * A stored event decoded to its current shape: the stored event's fields,
 * with `type` (its event type) and `data` in the current version's shape.
 * `schemaVersion` stays the version the event was stored with.
 *
 * @since 0.1.0
 * @category models
 */
export type Recorded<E extends EventType.Event> = E extends EventType.Event ? Omit<RecordedEvent, "data"> & E : never

/**
 * What to do with a stored event whose type is not in the registry:
 *
 * - `"fail"`: fail with an `EventDecodeError` (reason `UnknownEventType`);
 * - `"skip"`: leave it out;
 * - `"passthrough"`: hand it on as the raw `RecordedEvent` (tell the two apart
 *   with `isDecoded`).
 *
 * Events of a known type stored with a schema version newer than the
 * registry's always fail: they cannot be read correctly by this code.
 *
 * @since 0.1.0
 * @category models
 */
export type UnknownEventPolicy = "fail" | "skip" | "passthrough"

/**
 * What a reader with policy `P` gets for each stored event.
 *
 * @since 0.1.0
 * @category models
 */
export type Decoded<E extends EventType.Event, P extends UnknownEventPolicy = "fail"> =
  | Recorded<E>
  | (P extends "passthrough" ? RecordedEvent : never)

/**
 * What `encode` takes: an event and, optionally, its id and metadata.
 *
 * @since 0.1.0
 * @category models
 */
export type Appendable<E extends EventType.Event> = E & {
  readonly eventId?: string | undefined
  readonly metadata?: EventMetadata | undefined
}

/**
 * A registry declaration that cannot be right: duplicate names, invalid names
 * or versions, upcasters from versions that are not older than the current
 * one, or a gap in an upcaster chain (a version with no upcaster, whose stored
 * events could never be read).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidEventRegistry extends Schema.TaggedError<InvalidEventRegistry>()("InvalidEventRegistry", {
  problems: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `Invalid event registry:\n${this.problems.map((problem) => `  - ${problem}`).join("\n")}`
  }
}

// --- compiled decoders ------------------------------------------------------------

interface Failure {
  readonly issue: string
  readonly cause: unknown
}

/** Decoders from the stored data of each version (index `version - 1`) to the current shape. */
type Decoder = (data: unknown) => Effect.Effect<unknown, Failure>

const compiled = new WeakMap<EventRegistry<EventType.Event>, ReadonlyMap<string, ReadonlyArray<Decoder>>>()

const parseFailure = (context: string) => (issue: ParseResult.ParseIssue): Failure => ({
  issue: `${context}: ${ParseResult.TreeFormatter.formatIssueSync(issue)}`,
  cause: new ParseResult.ParseError({ issue })
})

const compile = (type: EventType.Any): ReadonlyArray<Decoder> => {
  const current: Decoder = (data) =>
    Effect.mapError(
      ParseResult.decodeUnknown(type.schema)(data),
      parseFailure(`as version ${type.version}`)
    )
  const decoders: Array<Decoder> = [current]
  for (let version = type.version - 1; version >= 1; version--) {
    const upcaster = type.upcasters[version] as EventType.Upcaster
    const next = decoders[0] as Decoder
    const step: Decoder = upcaster._tag === "Schema"
      ? (data) =>
        Effect.mapError(
          ParseResult.decodeUnknown(upcaster.schema)(data),
          parseFailure(`upcasting version ${version} to ${version + 1}`)
        )
      : (data) =>
        ParseResult.decodeUnknown(upcaster.schema)(data).pipe(
          Effect.mapError(parseFailure(`as version ${version}`)),
          Effect.flatMap((old) =>
            Effect.try({
              try: () => upcaster.upcast(old),
              catch: (cause): Failure => ({
                issue: `the upcaster from version ${version} threw: ${
                  cause instanceof Error ? cause.message : String(cause)
                }`,
                cause
              })
            })
          )
        )
    decoders.unshift((data) => Effect.flatMap(step(data), next))
  }
  return decoders
}

// --- construction -----------------------------------------------------------------

const problemsOf = (type: unknown, index: number): Array<string> => {
  if (!EventType.isEventType(type)) return [`argument ${index} is not an event type (use EventType.make)`]
  const problems: Array<string> = []
  const nameCheck = Effect.runSync(Effect.either(Validation.names("eventType", [type.name])))
  if (Either.isLeft(nameCheck)) problems.push(`event type ${JSON.stringify(type.name)}: ${nameCheck.left.reason}`)
  const name = JSON.stringify(type.name)
  if (!Schema.isSchema(type.schema)) problems.push(`${name}: schema is not a Schema`)
  if (!Number.isSafeInteger(type.version) || type.version < 1 || type.version > maxSchemaVersion) {
    problems.push(`${name}: the current version ${type.version} is not a positive integer`)
    return problems
  }
  for (const [key, upcaster] of Object.entries(type.upcasters)) {
    const from = Number(key)
    if (!Number.isSafeInteger(from) || from < 1 || String(from) !== key) {
      problems.push(`${name}: an upcaster is keyed ${JSON.stringify(key)}, which is not a version (1, 2, …)`)
    } else if (from >= type.version) {
      problems.push(
        `${name}: there is an upcaster from version ${from}, but the current version is ${type.version}` +
          (from === type.version ? " (the current version needs no upcaster)" : " (is the version too low?)")
      )
    }
    if (!EventType.isUpcaster(upcaster)) {
      problems.push(`${name}: the upcaster from version ${key} is not an upcaster (use EventType.upcast)`)
    }
  }
  const missing: Array<number> = []
  for (let version = 1; version < type.version && missing.length <= 10; version++) {
    if (!(version in type.upcasters)) missing.push(version)
  }
  if (missing.length > 0) {
    problems.push(
      `${name}: no upcaster from version ${missing.slice(0, 10).join(", ")}${
        missing.length > 10 ? ", …" : ""
      }: events stored at ` +
        `${missing.length === 1 ? "that version" : "those versions"} could not be read as version ${type.version}`
    )
  }
  return problems
}

/**
 * Builds a registry, checking every declaration: valid and distinct names,
 * positive versions, and a complete upcaster chain from version 1 to the
 * current version of each type. Use it when event types are assembled at run
 * time (plugins, configuration); `make` is for declarations in code.
 *
 * @since 0.1.0
 * @category constructors
 */
export const validate = <const Types extends ReadonlyArray<EventType.Any>>(
  ...types: Types
): Either.Either<EventRegistry<EventType.EventOf<Types[number]>>, InvalidEventRegistry> => {
  const problems = types.flatMap(problemsOf)
  const byName = new Map<string, EventType.Any>()
  for (const type of types) {
    if (!EventType.isEventType(type)) continue
    if (byName.has(type.name)) problems.push(`${JSON.stringify(type.name)} is declared twice`)
    byName.set(type.name, type)
  }
  if (types.length === 0) problems.push("a registry needs at least one event type")
  if (problems.length > 0) return Either.left(new InvalidEventRegistry({ problems: Arr.dedupe(problems) }))
  const registry: EventRegistry<EventType.EventOf<Types[number]>> = {
    [TypeId]: { _E: (_: never) => _ },
    types: byName,
    names: Array.from(byName.keys()) as unknown as readonly [string, ...Array<string>]
  }
  compiled.set(registry, new Map(Array.from(byName, ([name, type]) => [name, compile(type)])))
  return Either.right(registry)
}

/**
 * Builds a registry from event types declared in code, throwing an
 * `InvalidEventRegistry` that lists every problem when a declaration is wrong.
 *
 * Registries are module-level constants built from static declarations, so a
 * gap in a chain or a duplicate name is a bug in the program, not a condition
 * a caller could handle: failing as the module loads stops the process before
 * it reads or writes a single event, and names what to fix. `validate` returns
 * the same error as a value.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <const Types extends ReadonlyArray<EventType.Any>>(
  ...types: Types
): EventRegistry<EventType.EventOf<Types[number]>> => Either.getOrThrowWith(validate(...types), (error) => error)

/**
 * @since 0.1.0
 * @category guards
 */
export const isEventRegistry = (u: unknown): u is EventRegistry<EventType.Event> =>
  typeof u === "object" && u !== null && TypeId in u

/**
 * Whether a read event was decoded (rather than passed through raw under the
 * `"passthrough"` policy).
 *
 * @since 0.1.0
 * @category guards
 */
export const isDecoded = <E extends EventType.Event>(event: Recorded<E> | RecordedEvent): event is Recorded<E> =>
  "type" in event

// --- decoding ---------------------------------------------------------------------

const decodersOf = (registry: EventRegistry<EventType.Event>): ReadonlyMap<string, ReadonlyArray<Decoder>> => {
  const decoders = compiled.get(registry)
  if (decoders === undefined) {
    throw new Error("Not an event registry built by EventRegistry.make or EventRegistry.validate")
  }
  return decoders
}

/**
 * Decodes one stored event to its current shape: runs the upcaster chain from
 * the version it was stored with, then decodes with the current schema.
 * `Option.none()` only for an unknown type under the `"skip"` policy (default
 * `"fail"`). Every reader of typed events uses this function.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = <E extends EventType.Event, P extends UnknownEventPolicy = "fail">(
  registry: EventRegistry<E>,
  event: RecordedEvent,
  policy?: P
): Effect.Effect<Option.Option<Decoded<E, P>>, EventDecodeError> => {
  const failure = (reason: EventDecodeError["reason"], issue: string, cause?: unknown) =>
    new EventDecodeError({
      streamId: event.streamId,
      streamVersion: event.streamVersion,
      position: event.position,
      eventType: event.eventType,
      schemaVersion: event.schemaVersion,
      reason,
      issue,
      ...(cause === undefined ? {} : { cause })
    })
  const decoders = decodersOf(registry).get(event.eventType)
  if (decoders === undefined) {
    switch (policy ?? "fail") {
      case "skip":
        return Effect.succeedNone
      case "passthrough":
        return Effect.succeed(Option.some(event as Decoded<E, P>))
      default:
        return Effect.fail(failure("UnknownEventType", `the event type is not in the registry`))
    }
  }
  const decoder = decoders[event.schemaVersion - 1]
  if (decoder === undefined) {
    return Effect.fail(failure(
      "UnknownSchemaVersion",
      `the registry knows versions 1 to ${decoders.length}; this event was written by newer code`
    ))
  }
  return Effect.mapBoth(decoder(event.data), {
    onFailure: ({ cause, issue }) => failure("InvalidData", issue, cause),
    onSuccess: (data) => Option.some({ ...event, type: event.eventType, data } as unknown as Decoded<E, P>)
  })
}

/**
 * Decodes a stream of stored events (from `readStream`, `readAll`, a
 * subscription) with `decode`, chunk by chunk.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeStream = <E extends EventType.Event, P extends UnknownEventPolicy = "fail">(
  registry: EventRegistry<E>,
  policy?: P
): <Err, R>(self: Stream.Stream<RecordedEvent, Err, R>) => Stream.Stream<Decoded<E, P>, Err | EventDecodeError, R> =>
<Err, R>(self: Stream.Stream<RecordedEvent, Err, R>): Stream.Stream<Decoded<E, P>, Err | EventDecodeError, R> =>
  Stream.mapChunksEffect(self, (chunk) =>
    Effect.map(
      Effect.forEach(chunk, (event) => decode(registry, event, policy)),
      (decoded) => Chunk.unsafeFromArray(Arr.getSomes(decoded))
    ))

/**
 * Encodes an event with its type's current schema, for appending: the result
 * carries the current `schemaVersion`. Fails with `InvalidInput` (naming
 * `field`) when the type is not in the registry or the data does not encode.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = <E extends EventType.Event>(
  registry: EventRegistry<E>,
  event: Appendable<E>,
  field = "event"
): Effect.Effect<EventData, InvalidInput> => {
  const type = typeof event === "object" && event !== null ? registry.types.get(event.type) : undefined
  if (type === undefined) {
    return Effect.fail(
      new InvalidInput({
        field: `${field}.type`,
        reason: `${JSON.stringify((event as { type?: unknown })?.type)} is not one of ${registry.names.join(", ")}`
      })
    )
  }
  return ParseResult.encode(type.schema)(event.data).pipe(
    Effect.mapBoth({
      onFailure: (issue) =>
        new InvalidInput({ field: `${field}.data`, reason: ParseResult.TreeFormatter.formatIssueSync(issue) }),
      onSuccess: (data): EventData => ({
        eventType: type.name,
        schemaVersion: type.version,
        data,
        ...(event.eventId === undefined ? {} : { eventId: event.eventId }),
        ...(event.metadata === undefined ? {} : { metadata: event.metadata })
      })
    })
  )
}
