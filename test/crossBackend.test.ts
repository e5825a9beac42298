/**
 * The in-memory store and the embedded PostgreSQL store give the same answers:
 * random sequences of appends (with repeated event ids, retries, invalid
 * input and every kind of expected version), lifecycle operations (metadata,
 * soft deletes, tombstones, archives, erasures, scavenges) and reads (stream
 * views with their first version and epoch among them) run
 * against both, and every outcome must be equal, up to the numbering of
 * global positions and the clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import type {
  ConcurrencyError,
  DuplicateEventId,
  InvalidInput,
  MetadataConcurrencyError,
  StoreError,
  StreamDeleted,
  StreamNotFound
} from "../src/Errors.js"
import type { EventData } from "../src/EventData.js"
import type { StreamMetadata } from "../src/EventStore.js"
import { MemoryEventStore } from "../src/memory/index.js"
import { PgliteClient } from "../src/pglite/index.js"
import type { RecordedEvent, StreamInfo } from "../src/RecordedEvent.js"
import {
  append,
  archiveStream,
  type Backend,
  collect,
  deleteStream,
  eraseStream,
  getStreamMetadata,
  limits,
  listStreams,
  nth,
  readAll,
  readStream,
  scavenge,
  setStreamMetadata,
  streamVersion,
  tombstoneStream,
  viewStream
} from "./support/Harness.js"
import { type Expectation, expectationArbitrary, resolve } from "./support/model.js"
import { makeSchemaFixture, startupTimeout } from "./support/postgres.js"

// Code point order and UTF-16 order disagree on the last two.
const streamIds = ["Order-1", "Order-2", "Cart-1", "Order", "\uff38-1", "😀-1"] as const
const eventTypes = ["Placed", "Paid", "Shipped"] as const
const categories = ["Order", "Cart", "\uff38", "😀", "Nope"] as const

// A few ids shared by all appends of a run, so that duplicates and retries happen often.
const sharedIds = [1, 2, 3, 4, 5].map((i) => `00000000-0000-4000-8000-00000000000${i}`)

interface EventSpec {
  /** An index into `sharedIds`, or none for an id of its own. */
  readonly shared: Option.Option<number>
  readonly upperCase: boolean
  readonly type: number
  readonly schemaVersion: Option.Option<number>
  readonly data: unknown
  readonly correlationId: Option.Option<string>
}

type Op =
  | {
    readonly _tag: "Append"
    readonly stream: number
    readonly expectation: Expectation
    readonly events: ReadonlyArray<EventSpec>
  }
  | { readonly _tag: "Retry"; readonly of: number }
  | {
    readonly _tag: "ReadStream"
    readonly stream: number
    readonly direction: "forward" | "backward"
    readonly from: Option.Option<number>
    readonly limit: Option.Option<number>
    readonly batchSize: number
  }
  | {
    readonly _tag: "ReadAll"
    readonly fromRank: Option.Option<number>
    readonly limit: Option.Option<number>
    readonly batchSize: number
    readonly eventTypes: Option.Option<ReadonlyArray<string>>
    readonly categories: Option.Option<ReadonlyArray<string>>
    readonly includeArchived: boolean
  }
  | { readonly _tag: "StreamVersion"; readonly stream: number }
  | { readonly _tag: "ViewStream"; readonly stream: number; readonly from: Option.Option<number> }
  | {
    readonly _tag: "Lifecycle"
    readonly kind: "delete" | "tombstone" | "archive"
    readonly stream: number
    readonly expectation: Expectation
  }
  | { readonly _tag: "Erase"; readonly stream: number }
  | { readonly _tag: "Scavenge"; readonly batchSize: number }
  | {
    readonly _tag: "SetMetadata"
    readonly stream: number
    readonly maxCount: Option.Option<number>
    readonly truncateBefore: Option.Option<number>
    readonly expected: "any" | "current" | "stale"
  }
  | { readonly _tag: "GetMetadata"; readonly stream: number }
  | {
    readonly _tag: "ListStreams"
    readonly after: Option.Option<number>
    readonly category: Option.Option<string>
    readonly limit: Option.Option<number>
    readonly batchSize: number
  }

const option = <A>(arbitrary: FastCheck.Arbitrary<A>): FastCheck.Arbitrary<Option.Option<A>> =>
  FastCheck.option(arbitrary, { nil: undefined }).map(Option.fromNullable)

const dataArbitrary: FastCheck.Arbitrary<unknown> = FastCheck.oneof(
  { weight: 10, arbitrary: FastCheck.unicodeJsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: FastCheck.constant(Number.NaN) },
  { weight: 1, arbitrary: FastCheck.constant({ tooBig: "x".repeat(limits.maxEventBytes) }) }
)

const eventArbitrary: FastCheck.Arbitrary<EventSpec> = FastCheck.record({
  shared: option(FastCheck.integer({ min: 0, max: sharedIds.length - 1 })),
  upperCase: FastCheck.boolean(),
  type: FastCheck.integer({ min: 0, max: eventTypes.length - 1 }),
  schemaVersion: option(FastCheck.integer({ min: 1, max: 3 })),
  data: dataArbitrary,
  correlationId: option(FastCheck.string({ maxLength: 8 }))
})

const streamIndex = FastCheck.integer({ min: 0, max: streamIds.length - 1 })
const batchSize = FastCheck.integer({ min: 1, max: 4 })
const limit = option(FastCheck.integer({ min: 1, max: 6 }))

const opArbitrary: FastCheck.Arbitrary<Op> = FastCheck.oneof(
  {
    weight: 8,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("Append" as const),
      stream: streamIndex,
      expectation: expectationArbitrary,
      events: FastCheck.oneof(
        { weight: 9, arbitrary: FastCheck.array(eventArbitrary, { minLength: 1, maxLength: 4 }) },
        { weight: 1, arbitrary: FastCheck.constant([]) }
      )
    })
  },
  { weight: 2, arbitrary: FastCheck.record({ _tag: FastCheck.constant("Retry" as const), of: FastCheck.nat(50) }) },
  {
    weight: 2,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("ReadStream" as const),
      stream: streamIndex,
      direction: FastCheck.constantFrom("forward" as const, "backward" as const),
      from: option(FastCheck.integer({ min: 0, max: 10 })),
      limit,
      batchSize
    })
  },
  {
    weight: 2,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("ReadAll" as const),
      fromRank: option(FastCheck.integer({ min: 0, max: 30 })),
      limit,
      batchSize,
      eventTypes: option(FastCheck.subarray([...eventTypes], { minLength: 1 })),
      categories: option(FastCheck.subarray([...categories], { minLength: 1 })),
      includeArchived: FastCheck.boolean()
    })
  },
  {
    weight: 2,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("Lifecycle" as const),
      kind: FastCheck.constantFrom("delete" as const, "tombstone" as const, "archive" as const),
      stream: streamIndex,
      expectation: expectationArbitrary
    })
  },
  { weight: 1, arbitrary: FastCheck.record({ _tag: FastCheck.constant("Erase" as const), stream: streamIndex }) },
  { weight: 1, arbitrary: FastCheck.record({ _tag: FastCheck.constant("Scavenge" as const), batchSize }) },
  {
    weight: 2,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("SetMetadata" as const),
      stream: streamIndex,
      maxCount: option(FastCheck.integer({ min: 1, max: 4 })),
      truncateBefore: option(FastCheck.integer({ min: 0, max: 12 })),
      expected: FastCheck.constantFrom("any" as const, "current" as const, "stale" as const)
    })
  },
  { weight: 1, arbitrary: FastCheck.record({ _tag: FastCheck.constant("GetMetadata" as const), stream: streamIndex }) },
  {
    weight: 1,
    arbitrary: FastCheck.record({ _tag: FastCheck.constant("StreamVersion" as const), stream: streamIndex })
  },
  {
    weight: 4,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("ViewStream" as const),
      stream: streamIndex,
      from: option(FastCheck.integer({ min: 0, max: 10 }))
    })
  },
  {
    weight: 1,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("ListStreams" as const),
      after: option(streamIndex),
      category: option(FastCheck.constantFrom(...categories)),
      limit,
      batchSize
    })
  }
)

// --- running -------------------------------------------------------------------------

interface Call {
  readonly streamId: string
  readonly events: ReadonlyArray<EventData>
  readonly expectedVersion: ReturnType<typeof resolve>
}

/** What one backend answered, with positions still its own. */
type Answer =
  | { readonly _tag: "Appended"; readonly streamVersion: number; readonly positions: ReadonlyArray<bigint> }
  | { readonly _tag: "Failed"; readonly error: unknown }
  | { readonly _tag: "Events"; readonly events: ReadonlyArray<RecordedEvent> }
  | { readonly _tag: "Version"; readonly version: Option.Option<number> }
  | {
    readonly _tag: "View"
    readonly version: number
    readonly firstVersion: number
    readonly epoch: number
    readonly events: ReadonlyArray<RecordedEvent>
  }
  | { readonly _tag: "Streams"; readonly streams: ReadonlyArray<StreamInfo> }
  | { readonly _tag: "Metadata"; readonly metadata: StreamMetadata }
  | { readonly _tag: "Done"; readonly result: unknown }

type StoreFailure =
  | ConcurrencyError
  | DuplicateEventId
  | InvalidInput
  | StoreError
  | StreamNotFound
  | StreamDeleted
  | MetadataConcurrencyError

/** The fields of an error a caller acts on (an `InvalidInput`'s reason is prose). */
const errorFields = (error: StoreFailure): unknown => {
  switch (error._tag) {
    case "ConcurrencyError":
    case "MetadataConcurrencyError":
      return { _tag: error._tag, streamId: error.streamId, expected: error.expected, actual: error.actual }
    case "DuplicateEventId":
      return {
        _tag: error._tag,
        streamId: error.streamId,
        eventId: error.eventId,
        existingStreamId: error.existingStreamId,
        existingVersion: error.existingVersion
      }
    case "InvalidInput":
      return { _tag: error._tag, field: error.field }
    case "StreamNotFound":
    case "StreamDeleted":
      return { _tag: error._tag, streamId: error.streamId }
    case "StoreError":
      return { _tag: error._tag, message: error.message }
  }
}

const failed = (error: StoreFailure): Answer => ({ _tag: "Failed", error: errorFields(error) })

const runOps = (ops: ReadonlyArray<Op>) =>
  Effect.gen(function*() {
    const calls: Array<Call> = []
    const answers: Array<Answer> = []
    let ownIds = 0
    const callOf = (op: Extract<Op, { readonly _tag: "Append" }>, version: number): Call => ({
      streamId: nth(streamIds, op.stream),
      expectedVersion: resolve(op.expectation, version),
      events: op.events.map((spec) => {
        const id = Option.match(spec.shared, {
          onNone: () => `00000000-0000-4000-9000-${(++ownIds).toString(16).padStart(12, "0")}`,
          onSome: (i) => nth(sharedIds, i)
        })
        return {
          eventId: spec.upperCase ? id.toUpperCase() : id,
          eventType: nth(eventTypes, spec.type),
          data: spec.data,
          ...Option.match(spec.schemaVersion, { onNone: () => ({}), onSome: (schemaVersion) => ({ schemaVersion }) }),
          ...Option.match(spec.correlationId, {
            onNone: () => ({}),
            onSome: (correlationId) => ({ metadata: { correlationId, note: "cross" } })
          })
        }
      })
    })
    const runAppend = (call: Call) =>
      append(
        call.streamId,
        call.events,
        call.expectedVersion === undefined ? undefined : { expectedVersion: call.expectedVersion }
      ).pipe(
        Effect.match({
          onFailure: failed,
          onSuccess: (result): Answer => ({ _tag: "Appended", ...result })
        })
      )

    for (const op of ops) {
      switch (op._tag) {
        case "Append": {
          // Expectations relative to the stream's version ("current", "ahead") use
          // this backend's answer; a divergence there shows in the answers anyway.
          const version = Option.getOrElse(yield* streamVersion(nth(streamIds, op.stream)), () => 0)
          const call = callOf(op, version)
          calls.push(call)
          answers.push(yield* runAppend(call))
          break
        }
        case "Retry": {
          if (calls.length === 0) break
          answers.push(yield* runAppend(nth(calls, op.of % calls.length)))
          break
        }
        case "ReadStream": {
          const read = readStream(nth(streamIds, op.stream), {
            direction: op.direction,
            from: Option.getOrUndefined(op.from),
            limit: Option.getOrUndefined(op.limit),
            batchSize: op.batchSize
          })
          answers.push(
            yield* Effect.match(read, {
              onFailure: failed,
              onSuccess: (events): Answer => ({ _tag: "Events", events })
            })
          )
          break
        }
        case "ReadAll": {
          const log = yield* readAll()
          const from = Option.map(op.fromRank, (rank) => {
            const at = log[rank]
            const last = log[log.length - 1]
            return at !== undefined ? at.position : last !== undefined ? last.position + 1n : 0n
          })
          const read = readAll({
            from: Option.getOrUndefined(from),
            limit: Option.getOrUndefined(op.limit),
            batchSize: op.batchSize,
            filter: {
              eventTypes: Option.getOrUndefined(op.eventTypes),
              categories: Option.getOrUndefined(op.categories)
            },
            includeArchived: op.includeArchived
          })
          answers.push(
            yield* Effect.match(read, {
              onFailure: failed,
              onSuccess: (events): Answer => ({ _tag: "Events", events })
            })
          )
          break
        }
        case "StreamVersion": {
          answers.push({ _tag: "Version", version: yield* streamVersion(nth(streamIds, op.stream)) })
          break
        }
        case "ViewStream": {
          const read = Effect.flatMap(
            viewStream(nth(streamIds, op.stream)),
            ({ epoch, events, firstVersion, version }) =>
              Effect.map(collect(events({ from: Option.getOrUndefined(op.from) })), (read): Answer => ({
                _tag: "View",
                version,
                firstVersion,
                epoch,
                events: read
              }))
          )
          answers.push(yield* Effect.match(read, { onFailure: failed, onSuccess: (answer) => answer }))
          break
        }
        case "Lifecycle": {
          const streamId = nth(streamIds, op.stream)
          const version = Option.getOrElse(yield* streamVersion(streamId), () => 0)
          const expected = resolve(op.expectation, version)
          const options = expected === undefined ? undefined : { expectedVersion: expected }
          const operation = op.kind === "delete"
            ? deleteStream(streamId, options)
            : op.kind === "tombstone"
            ? tombstoneStream(streamId, options)
            : archiveStream(streamId, options)
          answers.push(
            yield* Effect.match(operation, {
              onFailure: failed,
              onSuccess: (result): Answer => ({ _tag: "Done", result })
            })
          )
          break
        }
        case "Erase": {
          answers.push({ _tag: "Done", result: yield* eraseStream(nth(streamIds, op.stream)) })
          break
        }
        case "Scavenge": {
          answers.push({ _tag: "Done", result: yield* scavenge({ batchSize: op.batchSize }) })
          break
        }
        case "SetMetadata": {
          const streamId = nth(streamIds, op.stream)
          const current = yield* getStreamMetadata(streamId).pipe(
            Effect.map((metadata) => metadata.metadataVersion),
            Effect.orElseSucceed(() => 0)
          )
          const written = setStreamMetadata(streamId, {
            ...Option.match(op.maxCount, { onNone: () => ({}), onSome: (maxCount) => ({ maxCount }) }),
            ...Option.match(op.truncateBefore, {
              onNone: () => ({}),
              onSome: (truncateBefore) => ({ truncateBefore })
            }),
            custom: { op: answers.length }
          }, {
            expectedMetadataVersion: op.expected === "any" ? "any" : op.expected === "current" ? current : current + 1
          })
          answers.push(
            yield* Effect.match(written, {
              onFailure: failed,
              onSuccess: (result): Answer => ({ _tag: "Done", result })
            })
          )
          break
        }
        case "GetMetadata": {
          const read = getStreamMetadata(nth(streamIds, op.stream))
          answers.push(
            yield* Effect.match(read, {
              onFailure: failed,
              onSuccess: (metadata): Answer => ({ _tag: "Metadata", metadata })
            })
          )
          break
        }
        case "ListStreams": {
          const read = listStreams({
            after: Option.getOrUndefined(Option.map(op.after, (i) => nth(streamIds, i))),
            category: Option.getOrUndefined(op.category),
            limit: Option.getOrUndefined(op.limit),
            batchSize: op.batchSize
          })
          answers.push(
            yield* Effect.match(read, {
              onFailure: failed,
              onSuccess: (streams): Answer => ({ _tag: "Streams", streams })
            })
          )
          break
        }
      }
    }
    const log = yield* readAll({ includeArchived: true })
    const streams = yield* listStreams()
    return normalise([...answers, { _tag: "Events", events: log }, { _tag: "Streams", streams }])
  })

/**
 * Positions become ranks among every position the run saw (backends may
 * number differently; only the order is the contract; a scavenge removes
 * events from the final log), and times are dropped.
 */
const normalise = (answers: ReadonlyArray<Answer>): ReadonlyArray<unknown> => {
  const positions = new Set(answers.flatMap((answer) =>
    answer._tag === "Appended"
      ? answer.positions
      : answer._tag === "Events" || answer._tag === "View"
      ? answer.events.map((e) => e.position)
      : []
  ))
  const rank = new Map([...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((p, i) => [p, i]))
  const rankOf = (position: bigint) => rank.get(position) ?? `missing position ${position}`
  return answers.map((answer) => {
    switch (answer._tag) {
      case "Appended":
        return { ...answer, positions: answer.positions.map(rankOf) }
      case "Events":
      case "View":
        return {
          ...answer,
          // The JSON text too: both must give the keys in the same (jsonb) order.
          events: answer.events.map(({ erasedAt, position, recordedAt: _, ...rest }) => ({
            ...rest,
            erased: erasedAt instanceof Date,
            rank: rankOf(position),
            json: JSON.stringify([rest.data, rest.metadata])
          }))
        }
      case "Streams":
        return {
          _tag: answer._tag,
          streams: answer.streams.map(({ category, streamId, version }) => ({ streamId, category, version }))
        }
      case "Metadata": {
        const { createdAt, ...rest } = answer.metadata
        return { _tag: answer._tag, ...rest, created: createdAt instanceof Date }
      }
      default:
        return answer
    }
  })
}

const run = (ops: ReadonlyArray<Op>, backend: Backend) => Effect.provide(runOps(ops), backend.makeStore(limits))

// --- the property ----------------------------------------------------------------------

const memory: Backend = { name: "memory", makeStore: (options) => MemoryEventStore.layer(options) }
const pglite = makeSchemaFixture("PGlite", PgliteClient.layer(), { dropSchemas: false })
beforeAll(() => pglite.start(), startupTimeout)
afterAll(() => pglite.dispose())

describe("memory and PGlite backends", () => {
  it.live.prop(
    "random appends, retries, lifecycle operations and reads give the same results on the memory and the PGlite store",
    { ops: FastCheck.array(opArbitrary, { minLength: 1, maxLength: 40 }) },
    ({ ops }) =>
      Effect.gen(function*() {
        const fromMemory = yield* run(ops, memory)
        const fromPglite = yield* run(ops, pglite)
        expect(fromMemory).toEqual(fromPglite)
      }),
    { timeout: 600_000, fastCheck: { numRuns: Number(process.env.CROSS_BACKEND_RUNS ?? 60) } }
  )
})
