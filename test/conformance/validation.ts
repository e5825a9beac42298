/**
 * Invariant 6: bad input gets an `InvalidInput` that names the offending field,
 * and leaves the store unchanged.
 */
import { describe, expect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { InvalidInput, StoreError, StreamDeleted, StreamNotFound } from "../../src/Errors.js"
import type { EventData, EventMetadata } from "../../src/EventData.js"
import type {
  AppendOptions,
  EventStore,
  ListStreamsOptions,
  ReadAllOptions,
  ReadStreamOptions
} from "../../src/EventStore.js"
import type { ExpectedVersion } from "../../src/ExpectedVersion.js"
import {
  append,
  type Backend,
  event,
  events,
  failsWith,
  leavesStoreUnchanged,
  limits,
  listStreams,
  makeTest,
  readAll,
  readStream,
  streamVersion
} from "../support/Harness.js"

class Money {
  constructor(readonly amount: number, readonly currency: string) {}
}

const cyclic = (): unknown => {
  const value: Record<string, unknown> = { name: "loop" }
  value.self = { parent: value }
  return value
}

/** An object whose property `key` throws when read. */
const throwing = (key: string): object =>
  Object.defineProperty({}, key, {
    enumerable: true,
    get() {
      throw new Error("not readable")
    }
  })

const revokedProxy = (): object => {
  const { proxy, revoke } = Proxy.revocable({}, {})
  revoke()
  return proxy
}

/** Data whose JSON, with `metadata: {}` (2 bytes), is exactly `bytes` long. */
const dataOfSize = (bytes: number): string => "x".repeat(bytes - 4)

const nestedArrays = (depth: number): unknown => {
  let value: unknown = []
  for (let i = 0; i < depth; i++) value = [value]
  return value
}

interface AppendCase {
  readonly name: string
  readonly streamId?: string
  readonly events?: ReadonlyArray<EventData>
  readonly options?: AppendOptions
  readonly field: string
}

const withData = (data: unknown): ReadonlyArray<EventData> => [event("Valid"), { eventType: "Bad", data }]
const withMetadata = (metadata: unknown): ReadonlyArray<EventData> => [
  { eventType: "Bad", data: {}, metadata: metadata as EventMetadata }
]
const expecting = (expectedVersion: unknown): AppendOptions => ({ expectedVersion: expectedVersion as ExpectedVersion })

const appendCases: ReadonlyArray<AppendCase> = [
  { name: "an empty stream id", streamId: "", field: "streamId" },
  { name: "a stream id of 256 characters", streamId: `Order-${"x".repeat(250)}`, field: "streamId" },
  { name: "a stream id with a newline", streamId: "Order-1\n", field: "streamId" },
  { name: "a stream id with a NUL character", streamId: "Order-\u00001", field: "streamId" },
  { name: "a stream id with a DEL character", streamId: "Order-\u007f", field: "streamId" },
  { name: "a stream id with a lone surrogate", streamId: "Order-\ud800", field: "streamId" },
  { name: "an empty event list", events: [], field: "events" },
  { name: "events that are not an array", events: null as unknown as ReadonlyArray<EventData>, field: "events" },
  { name: "an event that is null", events: [event("Ok"), null as unknown as EventData], field: "events[1]" },
  { name: "a stream id that is not a string", streamId: 42 as unknown as string, field: "streamId" },
  { name: "an empty event type", events: [event("")], field: "events[0].eventType" },
  { name: "an event type of 256 characters", events: [event("T".repeat(256))], field: "events[0].eventType" },
  {
    name: "an event type with a control character",
    events: [event("Ok"), event("Tab\tbed")],
    field: "events[1].eventType"
  },
  { name: "data with a bigint", events: withData({ amount: 10n }), field: "events[1].data" },
  { name: "data with a cycle", events: withData(cyclic()), field: "events[1].data" },
  { name: "data with a function", events: withData({ compute: () => 1 }), field: "events[1].data" },
  { name: "data with a symbol", events: withData({ tag: Symbol("tag") }), field: "events[1].data" },
  { name: "data with NaN", events: withData({ ratio: Number.NaN }), field: "events[1].data" },
  { name: "data with Infinity", events: withData([1, Number.POSITIVE_INFINITY]), field: "events[1].data" },
  { name: "data with a Date", events: withData({ at: new Date(0) }), field: "events[1].data" },
  { name: "data with a class instance", events: withData({ price: new Money(1, "EUR") }), field: "events[1].data" },
  { name: "data with a Map", events: withData(new Map([["a", 1]])), field: "events[1].data" },
  { name: "data with a string containing \\u0000", events: withData({ text: "a\u0000b" }), field: "events[1].data" },
  { name: "data with a lone surrogate", events: withData({ text: "\udc00 alone" }), field: "events[1].data" },
  { name: "data with a key that has a lone surrogate", events: withData({ ["\ud800"]: 1 }), field: "events[1].data" },
  { name: "data nested 10,000 levels deep", events: withData(nestedArrays(10_000)), field: "events[1].data" },
  { name: "data with an undefined array element", events: withData([1, undefined, 3]), field: "events[1].data" },
  { name: "undefined data", events: withData(undefined), field: "events[1].data" },
  { name: "data with -0", events: withData({ balance: -0 }), field: "events[1].data" },
  { name: "data that is -0", events: withData(-0), field: "events[1].data" },
  { name: "data with a getter that throws", events: withData(throwing("amount")), field: "events[1].data" },
  {
    name: "data with a nested getter that throws",
    events: withData({ lines: [throwing("sku")] }),
    field: "events[1].data"
  },
  { name: "data that is a revoked proxy", events: withData(revokedProxy()), field: "events[1].data" },
  { name: "metadata with -0", events: withMetadata({ score: -0 }), field: "events[0].metadata" },
  { name: "metadata with a getter that throws", events: withMetadata(throwing("tenant")), field: "events[0].metadata" },
  {
    name: "metadata whose correlationId getter throws",
    events: withMetadata(throwing("correlationId")),
    field: "events[0].metadata"
  },
  { name: "an event whose eventType getter throws", events: [throwing("eventType") as EventData], field: "events[0]" },
  { name: "metadata with a bigint", events: withMetadata({ tenant: 1n }), field: "events[0].metadata" },
  { name: "metadata that is an array", events: withMetadata(["a"]), field: "events[0].metadata" },
  { name: "metadata that is a string", events: withMetadata("meta"), field: "events[0].metadata" },
  {
    name: "a correlationId that is not a string",
    events: withMetadata({ correlationId: 42 }),
    field: "events[0].metadata.correlationId"
  },
  {
    name: "a causationId that is not a string",
    events: withMetadata({ causationId: { id: 1 } }),
    field: "events[0].metadata.causationId"
  },
  {
    name: `data over maxEventBytes (${limits.maxEventBytes + 1} bytes)`,
    events: [{ eventType: "Big", data: dataOfSize(limits.maxEventBytes + 1), metadata: {} }],
    field: "events[0]"
  },
  {
    name: "data over maxEventBytes in UTF-8 bytes though not in characters",
    events: [{ eventType: "Big", data: "é".repeat(600), metadata: {} }],
    field: "events[0]"
  },
  {
    name: "metadata that brings the event over maxEventBytes",
    events: [event("Ok"), {
      eventType: "Big",
      data: { small: true },
      metadata: { note: "m".repeat(limits.maxEventBytes) }
    }],
    field: "events[1]"
  },
  { name: "a schema version of 0", events: [event("A", {}, { schemaVersion: 0 })], field: "events[0].schemaVersion" },
  {
    name: "a schema version of 1.5",
    events: [event("A", {}, { schemaVersion: 1.5 })],
    field: "events[0].schemaVersion"
  },
  {
    name: "a schema version of 2147483648 (over int4)",
    events: [event("A", {}, { schemaVersion: 2_147_483_648 })],
    field: "events[0].schemaVersion"
  },
  {
    name: "an event id that is not a UUID",
    events: [event("A", {}, { eventId: "order-created-1" })],
    field: "events[0].eventId"
  },
  { name: "an empty event id", events: [event("A", {}, { eventId: "" })], field: "events[0].eventId" },
  {
    name: "an event id without dashes",
    events: [event("A", {}, { eventId: "0190f5a27c1e7a3b9d1e2f3a4b5c6d7e" })],
    field: "events[0].eventId"
  },
  {
    name: "an event id with braces",
    events: [event("A", {}, { eventId: "{0190f5a2-7c1e-7a3b-9d1e-2f3a4b5c6d7e}" })],
    field: "events[0].eventId"
  },
  { name: "an expected version of -1", options: expecting(-1), field: "expectedVersion" },
  { name: "an expected version of 1.5", options: expecting(1.5), field: "expectedVersion" },
  { name: "an expected version of NaN", options: expecting(Number.NaN), field: "expectedVersion" },
  { name: "an expected version of \"latest\"", options: expecting("latest"), field: "expectedVersion" }
]

interface ReadCase {
  readonly name: string
  readonly read: Effect.Effect<unknown, InvalidInput | StreamNotFound | StreamDeleted | StoreError, EventStore>
  readonly field: string
}

const streamRead = (options: ReadStreamOptions, streamId = "Order-1") => readStream(streamId, options)
const allRead = (options: ReadAllOptions) => readAll(options)
const listRead = (options: ListStreamsOptions) => listStreams(options)

const readCases: ReadonlyArray<ReadCase> = [
  { name: "readStream with limit 0", read: streamRead({ limit: 0 }), field: "limit" },
  { name: "readStream with limit -1", read: streamRead({ limit: -1 }), field: "limit" },
  { name: "readStream with limit 1.5", read: streamRead({ limit: 1.5 }), field: "limit" },
  { name: "readStream from -1", read: streamRead({ from: -1 }), field: "from" },
  { name: "readStream from 1.5", read: streamRead({ from: 1.5 }), field: "from" },
  { name: "readStream with batchSize 0", read: streamRead({ batchSize: 0 }), field: "batchSize" },
  { name: "readStream with batchSize 10001", read: streamRead({ batchSize: 10_001 }), field: "batchSize" },
  {
    name: "readStream in direction sideways",
    read: streamRead({ direction: "sideways" as unknown as "forward" }),
    field: "direction"
  },
  { name: "readStream of an empty stream id", read: streamRead({}, ""), field: "streamId" },
  { name: "readStream of a stream id of 256 characters", read: streamRead({}, "s".repeat(256)), field: "streamId" },
  { name: "readAll from -1", read: allRead({ from: -1n }), field: "from" },
  { name: "readAll from a number instead of a bigint", read: allRead({ from: 1 as unknown as bigint }), field: "from" },
  { name: "readAll with limit 0", read: allRead({ limit: 0 }), field: "limit" },
  { name: "readAll with batchSize 0", read: allRead({ batchSize: 0 }), field: "batchSize" },
  { name: "readAll with batchSize 10001", read: allRead({ batchSize: 10_001 }), field: "batchSize" },
  {
    name: "readAll filtered by no event types",
    read: allRead({ filter: { eventTypes: [] } }),
    field: "filter.eventTypes"
  },
  {
    name: "readAll filtered by an empty event type",
    read: allRead({ filter: { eventTypes: [""] } }),
    field: "filter.eventTypes"
  },
  {
    name: "readAll filtered by no categories",
    read: allRead({ filter: { categories: [] } }),
    field: "filter.categories"
  },
  {
    name: "readAll filtered by an empty category",
    read: allRead({ filter: { categories: [""] } }),
    field: "filter.categories"
  },
  {
    name: "readAll filtered by no stream ids",
    read: allRead({ filter: { streamIds: [] } }),
    field: "filter.streamIds"
  },
  { name: "listStreams with limit 0", read: listRead({ limit: 0 }), field: "limit" },
  { name: "listStreams with batchSize 10001", read: listRead({ batchSize: 10_001 }), field: "batchSize" },
  { name: "listStreams of an empty category", read: listRead({ category: "" }), field: "category" },
  { name: "streamVersion of an empty stream id", read: streamVersion(""), field: "streamId" },
  { name: "streamVersion of a stream id with a control character", read: streamVersion("Order\r1"), field: "streamId" }
]

export const validationCases = (backend: Backend): void => {
  const test = makeTest(backend)

  describe("input validation", () => {
    for (const c of appendCases) {
      test(`append with ${c.name} fails with InvalidInput on ${c.field} and stores nothing`, () =>
        Effect.gen(function*() {
          const streamId = c.streamId ?? "Order-1"
          yield* append("Order-1", events(2))
          const error = yield* leavesStoreUnchanged(
            failsWith("InvalidInput")(
              append(streamId, c.events === undefined ? events(1, "New") : c.events, c.options)
            ),
            ["Order-1"]
          )
          expect(error.field).toBe(c.field)
          expect(error.reason.length).toBeGreaterThan(0)
          expect(error.message).toContain(c.field)
        }))
    }

    test("a stream id and an event type of 255 characters are accepted", () =>
      Effect.gen(function*() {
        const streamId = `Order-${"x".repeat(249)}`
        const result = yield* append(streamId, [event("T".repeat(255))])
        expect(result.streamVersion).toBe(1)
        const [stored] = yield* readStream(streamId)
        expect(stored?.streamId).toBe(streamId)
        expect(stored?.eventType).toBe("T".repeat(255))
      }))

    test(`an event of exactly maxEventBytes (${limits.maxEventBytes}) of data and metadata is accepted`, () =>
      Effect.gen(function*() {
        const data = dataOfSize(limits.maxEventBytes)
        yield* append("Order-1", [{ eventType: "Big", data, metadata: {} }])
        const [stored] = yield* readStream("Order-1")
        expect(stored?.data).toBe(data)
      }))

    test("an undefined metadata property, an undefined data property and unusual but valid JSON are accepted", () =>
      Effect.gen(function*() {
        yield* append("Order-1", [
          { eventType: "A", data: { kept: 1, dropped: undefined }, metadata: { correlationId: undefined } },
          event("B", Object.create(null)),
          event("C", { "": "empty key", "with space": [[], {}], "-0": 0, tiny: 5e-324, huge: 1.7976931348623157e308 })
        ])
        expect(yield* readStream("Order-1")).toHaveLength(3)
      }))

    test("data is read once: the value a getter returned when checked is the value stored", () =>
      Effect.gen(function*() {
        let reads = 0
        const data = Object.defineProperty({}, "amount", {
          enumerable: true,
          get: () => (++reads === 1 ? 1 : Number.NaN)
        })
        yield* append("Order-1", [event("Counted", data)])
        const [stored] = yield* readStream("Order-1")
        expect(stored?.data).toEqual({ amount: 1 })
        expect(reads).toBe(1)
      }))

    test("toJSON is never called: an array is stored as its elements, as JSON has it", () =>
      Effect.gen(function*() {
        yield* append("Order-1", [event("Listed", { list: Object.assign([1, 2], { toJSON: () => "replaced" }) })])
        const [stored] = yield* readStream("Order-1")
        expect(stored?.data).toEqual({ list: [1, 2] })
      }))

    test("an expected version given as a plain non-negative integer is accepted", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1), { expectedVersion: 0 })
        yield* append("Order-1", events(1), { expectedVersion: 1 })
        expect(yield* readStream("Order-1")).toHaveLength(2)
      }))

    for (const c of readCases) {
      test(`${c.name} fails with InvalidInput on ${c.field}`, () =>
        Effect.gen(function*() {
          yield* append("Order-1", events(3))
          const error = yield* leavesStoreUnchanged(failsWith("InvalidInput")(c.read))
          expect(error.field).toBe(c.field)
        }))
    }

    test("readAll from beyond the largest possible position (2^63) is empty or fails with InvalidInput on from, not a StoreError", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        const outcome = yield* Effect.either(readAll({ from: 2n ** 63n }))
        if (Either.isRight(outcome)) expect(outcome.right).toEqual([])
        else expect(outcome.left).toMatchObject({ _tag: "InvalidInput", field: "from" })
      }))

    test("a store built with maxEventBytes 0 fails to start with InvalidInput on maxEventBytes", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Effect.provide(append("Order-1", events(1)), backend.makeStore({ maxEventBytes: 0 }))
        )
        expect(error).toMatchObject({ _tag: "InvalidInput", field: "maxEventBytes" })
      }))

    test("reads with batchSize 10000, the largest allowed, succeed", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        expect(yield* readStream("Order-1", { batchSize: 10_000 })).toHaveLength(3)
        expect(yield* readAll({ batchSize: 10_000 })).toHaveLength(3)
        expect(yield* listStreams({ batchSize: 10_000 })).toHaveLength(1)
      }))
  })
}
