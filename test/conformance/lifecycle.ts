/**
 * The lifecycle of streams (docs/lifecycle.md): metadata and its own
 * optimistic check, what `readStream` hides (`truncateBefore`, `maxCount`,
 * `maxAge`), `scavenge`, soft delete, tombstones, archiving and erasure.
 * Modelled on what EventStoreDB's client tests check: metadata round-trips,
 * delete then append, tombstone then append and read, truncate-before and
 * max-count then read.
 */
import { describe, expect } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { EventData } from "../../src/EventData.js"
import { EventStore, type StreamMetadataInput, type SubscribeOptions } from "../../src/EventStore.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import {
  age,
  append,
  archiveStream,
  type Backend,
  deleteStream,
  eraseStream,
  event,
  events,
  failsWith,
  getStreamMetadata,
  idsOf,
  listStreams,
  makeTest,
  nth,
  positionsOf,
  range,
  readAll,
  readStream,
  scavenge,
  setStreamMetadata,
  streamVersion,
  tombstoneStream,
  versionsOf
} from "../support/Harness.js"
import { patience } from "../support/wait.js"

const hour = 60 * 60 * 1000

/** Everything a reader can see of one stream, for "unchanged" checks. */
const streamView = (streamId: string) =>
  Effect.all({
    version: streamVersion(streamId),
    metadata: getStreamMetadata(streamId).pipe(Effect.either),
    events: readStream(streamId).pipe(Effect.either)
  })

const streamIdsOf = (values: ReadonlyArray<RecordedEvent>) => values.map((value) => value.streamId)

/** The first `count` events of a subscription. */
const subscribeTake = (count: number, options: SubscribeOptions) =>
  Effect.flatMap(EventStore, (store) =>
    Stream.runCollect(Stream.take(store.subscribe(options), count)).pipe(
      Effect.map(Chunk.toReadonlyArray),
      Effect.timeoutFail({ duration: patience, onTimeout: () => "subscription stalled" })
    ))

interface InvalidMetadataCase {
  readonly name: string
  readonly metadata: unknown
  readonly options?: unknown
  readonly field: string
}

const big = 2n ** 70n
const throwing = (key: string): object =>
  Object.defineProperty({}, key, {
    enumerable: true,
    get() {
      throw new Error("not readable")
    }
  })
const throwingProxy = (): object =>
  new Proxy({}, {
    ownKeys() {
      throw new Error("no keys")
    }
  })
const circular: Record<string, unknown> = { a: 1 }
circular.self = circular

const invalidMetadata: ReadonlyArray<InvalidMetadataCase> = [
  { name: "maxCount 0", metadata: { maxCount: 0 }, field: "metadata.maxCount" },
  { name: "maxCount -1", metadata: { maxCount: -1 }, field: "metadata.maxCount" },
  { name: "maxCount 1.5", metadata: { maxCount: 1.5 }, field: "metadata.maxCount" },
  { name: "maxCount NaN", metadata: { maxCount: Number.NaN }, field: "metadata.maxCount" },
  { name: "maxCount as a string", metadata: { maxCount: "3" }, field: "metadata.maxCount" },
  { name: "truncateBefore -1", metadata: { truncateBefore: -1 }, field: "metadata.truncateBefore" },
  { name: "truncateBefore 2.5", metadata: { truncateBefore: 2.5 }, field: "metadata.truncateBefore" },
  { name: "truncateBefore Infinity", metadata: { truncateBefore: Infinity }, field: "metadata.truncateBefore" },
  { name: "maxAge 0", metadata: { maxAge: "0 millis" }, field: "metadata.maxAge" },
  { name: "maxAge -5 seconds", metadata: { maxAge: "-5 seconds" }, field: "metadata.maxAge" },
  { name: "maxAge as a bare number (ms or s?)", metadata: { maxAge: 2 }, field: "metadata.maxAge" },
  { name: "maxAge as a bare bigint", metadata: { maxAge: 2000n }, field: "metadata.maxAge" },
  { name: "maxAge of 1.5 milliseconds", metadata: { maxAge: Duration.micros(1500n) }, field: "metadata.maxAge" },
  { name: "maxAge infinity", metadata: { maxAge: Duration.infinity }, field: "metadata.maxAge" },
  { name: "maxAge that is not a duration", metadata: { maxAge: "a while" }, field: "metadata.maxAge" },
  { name: "custom as an array", metadata: { custom: [1, 2] }, field: "metadata.custom" },
  { name: "custom as null", metadata: { custom: null }, field: "metadata.custom" },
  { name: "custom as a string", metadata: { custom: "owner" }, field: "metadata.custom" },
  { name: "custom with a bigint", metadata: { custom: { n: big } }, field: "metadata.custom" },
  { name: "custom with a Date", metadata: { custom: { at: new Date(0) } }, field: "metadata.custom" },
  { name: "custom with a function", metadata: { custom: { f: () => 1 } }, field: "metadata.custom" },
  { name: "custom with a cycle", metadata: { custom: circular }, field: "metadata.custom" },
  { name: "custom with NaN", metadata: { custom: { n: Number.NaN } }, field: "metadata.custom" },
  { name: "custom with -0", metadata: { custom: { n: -0 } }, field: "metadata.custom" },
  { name: "custom with a getter that throws", metadata: { custom: throwing("owner") }, field: "metadata.custom" },
  { name: "custom that is a proxy whose traps throw", metadata: { custom: throwingProxy() }, field: "metadata.custom" },
  { name: "metadata with a getter that throws", metadata: throwing("maxCount"), field: "metadata" },
  { name: "custom over maxEventBytes", metadata: { custom: { note: "x".repeat(2000) } }, field: "metadata.custom" },
  { name: "an unknown setting", metadata: { maxcount: 3 }, field: "metadata.maxcount" },
  { name: "metadata that is not an object", metadata: null, field: "metadata" },
  {
    name: "expectedMetadataVersion -1",
    metadata: {},
    options: { expectedMetadataVersion: -1 },
    field: "expectedMetadataVersion"
  },
  {
    name: "expectedMetadataVersion 1.5",
    metadata: {},
    options: { expectedMetadataVersion: 1.5 },
    field: "expectedMetadataVersion"
  },
  {
    name: "expectedMetadataVersion no_stream",
    metadata: {},
    options: { expectedMetadataVersion: "no_stream" },
    field: "expectedMetadataVersion"
  }
]

export const lifecycleCases = (backend: Backend): void => {
  const test = makeTest(backend)

  describe("stream metadata", () => {
    test("the metadata of a stream that was never written has metadata version 0, no settings and no custom keys", () =>
      Effect.gen(function*() {
        expect(yield* getStreamMetadata("Order-1")).toEqual({ metadataVersion: 0, custom: {}, category: "Order" })
        yield* append("Order-1", events(2))
        const metadata = yield* getStreamMetadata("Order-1")
        expect(metadata.metadataVersion).toBe(0)
        expect(metadata.maxCount).toBeUndefined()
        expect(metadata.maxAge).toBeUndefined()
        expect(metadata.truncateBefore).toBeUndefined()
        expect(metadata.custom).toEqual({})
        expect(metadata.createdAt).toEqual(nth(yield* listStreams(), 0).createdAt)
      }))

    test("setStreamMetadata round-trips every setting and the custom keys, and returns metadata version 1", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        const custom = { owner: "team-a", tags: ["x", "ü"], nested: { n: 1.5, ok: true, none: null } }
        const written = yield* setStreamMetadata("Order-1", {
          maxCount: 10,
          maxAge: "2 hours",
          truncateBefore: 2,
          custom
        })
        expect(written).toEqual({ metadataVersion: 1 })
        const metadata = yield* getStreamMetadata("Order-1")
        expect(metadata.metadataVersion).toBe(1)
        expect(metadata.maxCount).toBe(10)
        expect(metadata.maxAge).toBeDefined()
        expect(Duration.toMillis(metadata.maxAge ?? Duration.zero)).toBe(2 * hour)
        expect(metadata.truncateBefore).toBe(2)
        expect(metadata.custom).toEqual(custom)
        expect(metadata.category).toBe("Order")
        expect(metadata.createdAt).toBeInstanceOf(Date)
      }))

    test("maxAge is accepted as any DurationInput with a unit and given back in whole milliseconds", () =>
      Effect.gen(function*() {
        for (
          const [input, millis] of [
            ["1500 millis", 1500],
            ["3 seconds", 3000],
            [Duration.minutes(2), 120_000],
            [[2, 500_000_000], 2500]
          ] as const
        ) {
          yield* setStreamMetadata("Order-1", { maxAge: input })
          const metadata = yield* getStreamMetadata("Order-1")
          expect(metadata.maxAge && Duration.toMillis(metadata.maxAge)).toBe(millis)
        }
      }))

    test("setStreamMetadata replaces the metadata as a whole: a setting left out is removed", () =>
      Effect.gen(function*() {
        yield* setStreamMetadata("Order-1", { maxCount: 5, truncateBefore: 3, custom: { a: 1 } })
        yield* setStreamMetadata("Order-1", { custom: { b: 2 } })
        const metadata = yield* getStreamMetadata("Order-1")
        expect(metadata).toEqual({ metadataVersion: 2, custom: { b: 2 }, category: "Order" })
      }))

    test("setting metadata on a stream with no events is allowed and does not create the stream", () =>
      Effect.gen(function*() {
        yield* setStreamMetadata("Order-1", { maxCount: 2, custom: { owner: "a" } })
        expect(yield* streamVersion("Order-1")).toEqual(Option.none())
        yield* failsWith("StreamNotFound")(readStream("Order-1"))
        expect(yield* listStreams()).toEqual([])
        expect((yield* getStreamMetadata("Order-1")).createdAt).toBeUndefined()
        const created = yield* append("Order-1", events(3), { expectedVersion: "no_stream" })
        expect(created.streamVersion).toBe(3)
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([2, 3])
        const metadata = yield* getStreamMetadata("Order-1")
        expect(metadata.custom).toEqual({ owner: "a" })
        expect(metadata.createdAt).toBeInstanceOf(Date)
      }))

    test("the metadata version counts writes; an exact expectedMetadataVersion succeeds and a stale one fails with MetadataConcurrencyError", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1))
        expect(yield* setStreamMetadata("Order-1", { maxCount: 1 }, { expectedMetadataVersion: 0 })).toEqual({
          metadataVersion: 1
        })
        expect(yield* setStreamMetadata("Order-1", { maxCount: 2 }, { expectedMetadataVersion: 1 })).toEqual({
          metadataVersion: 2
        })
        expect(yield* setStreamMetadata("Order-1", { maxCount: 3 })).toEqual({ metadataVersion: 3 })
        const before = yield* getStreamMetadata("Order-1")
        for (const expected of [0, 2, 4]) {
          const error = yield* failsWith("MetadataConcurrencyError")(
            setStreamMetadata("Order-1", { maxCount: 9 }, { expectedMetadataVersion: expected })
          )
          expect(error).toMatchObject({ streamId: "Order-1", expected, actual: 3 })
        }
        expect(yield* getStreamMetadata("Order-1")).toEqual(before)
      }))

    test("expectedMetadataVersion 0 succeeds on a stream that does not exist; another number fails with actual 0 and writes nothing", () =>
      Effect.gen(function*() {
        const error = yield* failsWith("MetadataConcurrencyError")(
          setStreamMetadata("Order-2", { maxCount: 1 }, { expectedMetadataVersion: 1 })
        )
        expect(error).toMatchObject({ streamId: "Order-2", expected: 1, actual: 0 })
        expect(yield* getStreamMetadata("Order-2")).toEqual({ metadataVersion: 0, custom: {}, category: "Order" })
        expect(yield* setStreamMetadata("Order-2", { maxCount: 1 }, { expectedMetadataVersion: 0 })).toEqual({
          metadataVersion: 1
        })
      }))

    test("metadata writes do not change the stream: version, events, the global log and the stream list stay", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        const log = yield* readAll()
        const streams = yield* listStreams()
        yield* setStreamMetadata("Order-1", { custom: { a: 1 } })
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(3))
        expect(yield* readAll()).toEqual(log)
        expect(yield* listStreams()).toEqual(streams)
        expect((yield* append("Order-1", events(1), { expectedVersion: 3 })).streamVersion).toBe(4)
      }))

    for (const { field, metadata, name, options } of invalidMetadata) {
      test(`setStreamMetadata with ${name} fails with InvalidInput on ${field} and changes nothing`, () =>
        Effect.gen(function*() {
          yield* append("Order-1", events(2))
          yield* setStreamMetadata("Order-1", { custom: { keep: true } })
          const before = yield* streamView("Order-1")
          const error = yield* failsWith("InvalidInput")(
            setStreamMetadata("Order-1", metadata as StreamMetadataInput, options as never)
          )
          expect(error.field).toBe(field)
          expect(yield* streamView("Order-1")).toEqual(before)
        }))
    }
  })

  describe("truncateBefore, maxCount and maxAge", () => {
    test("truncateBefore then read: only versions from truncateBefore on, forward and backward; the stream's version stays", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(7))
        const all = yield* readAll()
        yield* setStreamMetadata("Order-1", { truncateBefore: 4 })
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([4, 5, 6, 7])
        expect(versionsOf(yield* readStream("Order-1", { direction: "backward" }))).toEqual([7, 6, 5, 4])
        expect(versionsOf(yield* readStream("Order-1", { from: 2, limit: 2 }))).toEqual([4, 5])
        expect(versionsOf(yield* readStream("Order-1", { direction: "backward", from: 5, batchSize: 1 }))).toEqual([
          5,
          4
        ])
        expect(versionsOf(yield* readStream("Order-1", { batchSize: 3 }))).toEqual([4, 5, 6, 7])
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(7))
        expect(yield* readAll()).toEqual(all)
        expect((yield* append("Order-1", events(1), { expectedVersion: 7 })).streamVersion).toBe(8)
      }))

    test("truncateBefore past the last version hides every event: the stream exists, reads empty, and shows events from that version on", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        yield* setStreamMetadata("Order-1", { truncateBefore: 5 })
        expect(yield* readStream("Order-1")).toEqual([])
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(3))
        yield* append("Order-1", events(3))
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([5, 6])
      }))

    test("lowering truncateBefore before a scavenge shows the hidden events again", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(4))
        yield* setStreamMetadata("Order-1", { truncateBefore: 3 })
        yield* setStreamMetadata("Order-1", { truncateBefore: 2 })
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([2, 3, 4])
        yield* scavenge()
        yield* setStreamMetadata("Order-1", {})
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([2, 3, 4])
      }))

    test("maxCount then read: only the newest maxCount events, forward and backward, as the stream grows", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(10))
        yield* setStreamMetadata("Order-1", { maxCount: 3 })
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([8, 9, 10])
        expect(versionsOf(yield* readStream("Order-1", { direction: "backward" }))).toEqual([10, 9, 8])
        expect(versionsOf(yield* readStream("Order-1", { direction: "backward", from: 9 }))).toEqual([9, 8])
        expect(versionsOf(yield* readStream("Order-1", { from: 1, limit: 2, batchSize: 1 }))).toEqual([8, 9])
        yield* append("Order-1", events(2))
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([10, 11, 12])
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(12))
        yield* setStreamMetadata("Order-1", { maxCount: 100 })
        expect(versionsOf(yield* readStream("Order-1"))).toEqual(range(1, 12))
      }))

    test("maxCount and truncateBefore together: the stricter one wins", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(10))
        yield* setStreamMetadata("Order-1", { maxCount: 5, truncateBefore: 8 })
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([8, 9, 10])
        yield* setStreamMetadata("Order-1", { maxCount: 2, truncateBefore: 4 })
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([9, 10])
      }))

    test("maxAge then read: events older than maxAge are hidden, by the store's clock; the stream's version stays", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3, "Old"))
        yield* age(3 * hour)
        yield* append("Order-1", events(2, "New"))
        yield* setStreamMetadata("Order-1", { maxAge: "1 hour" })
        expect((yield* readStream("Order-1")).map((e) => e.eventType)).toEqual(["New1", "New2"])
        expect(versionsOf(yield* readStream("Order-1", { direction: "backward", batchSize: 1 }))).toEqual([5, 4])
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(5))
        yield* setStreamMetadata("Order-1", { maxAge: "4 hours" })
        expect(versionsOf(yield* readStream("Order-1"))).toEqual(range(1, 5))
        yield* age(5 * hour)
        expect(yield* readStream("Order-1")).toEqual([])
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(5))
      }))

    test("maxAge with the real clock: an event older than maxAge is hidden and a fresh one is not", () =>
      Effect.gen(function*() {
        const maxAge = 1500
        yield* append("Order-1", events(2, "Old"))
        yield* setStreamMetadata("Order-1", { maxAge: `${maxAge} millis` })
        yield* Effect.sleep(`${maxAge + 200} millis`)
        // "Fresh" holds only for a read within maxAge of the append: on a machine
        // too busy for that, the attempt says nothing and is made again.
        for (let attempt = 1;; attempt++) {
          const appendedAt = yield* Clock.currentTimeMillis
          yield* append("Order-1", [event(`New${attempt}`)])
          const read = (yield* readStream("Order-1")).map((e) => e.eventType)
          expect(read.filter((type) => type.startsWith("Old"))).toEqual([])
          if ((yield* Clock.currentTimeMillis) - appendedAt < maxAge || attempt === 20) {
            expect(read).toContain(`New${attempt}`)
            break
          }
        }
      }))
  })

  describe("scavenge", () => {
    const given = Effect.gen(function*() {
      yield* append("Plain-1", events(2))
      yield* append("Truncated-1", events(5))
      yield* setStreamMetadata("Truncated-1", { truncateBefore: 4 })
      yield* append("Counted-1", events(6))
      yield* setStreamMetadata("Counted-1", { maxCount: 2 })
      yield* append("Aged-1", events(2, "Old"))
      yield* age(2 * hour)
      yield* append("Aged-1", events(1, "New"))
      yield* setStreamMetadata("Aged-1", { maxAge: "1 hour" })
      yield* append("Deleted-1", events(3))
      yield* deleteStream("Deleted-1")
      yield* append("Gone-1", events(2))
      yield* tombstoneStream("Gone-1")
      yield* append("Plain-2", events(1))
    })
    const streamIds = ["Plain-1", "Truncated-1", "Counted-1", "Aged-1", "Deleted-1", "Gone-1", "Plain-2"]
    const reads = Effect.forEach(streamIds, (id) => readStream(id).pipe(Effect.either))

    test("before a scavenge readAll still returns what the metadata hides, and the events of deleted and tombstoned streams", () =>
      Effect.gen(function*() {
        yield* given
        expect(yield* readAll()).toHaveLength(2 + 5 + 6 + 3 + 3 + 2 + 1)
      }))

    test("scavenge then readAll: exactly what readStream shows is left, at the same positions; readStream is unchanged", () =>
      Effect.gen(function*() {
        yield* given
        const before = yield* readAll()
        const streamsBefore = yield* reads
        const visible = new Set(
          streamsBefore.flatMap((read) => read._tag === "Right" ? read.right.map((e) => e.eventId) : [])
        )
        const result = yield* scavenge()
        expect(result).toEqual({ removed: before.length - visible.size, streams: 5 })
        const after = yield* readAll()
        expect(after).toEqual(before.filter((e) => visible.has(e.eventId)))
        expect(yield* reads).toEqual(streamsBefore)
        expect(yield* scavenge()).toEqual({ removed: 0, streams: 0 })
      }))

    for (const batchSize of [1, 2]) {
      test(`scavenge in batches of ${batchSize} removes the same events`, () =>
        Effect.gen(function*() {
          yield* given
          const before = yield* readAll()
          const visible = new Set((yield* reads).flatMap((read) => read._tag === "Right" ? idsOf(read.right) : []))
          expect(yield* scavenge({ batchSize })).toEqual({ removed: before.length - visible.size, streams: 5 })
          expect(yield* readAll()).toEqual(before.filter((e) => visible.has(e.eventId)))
        }))
    }

    test("after a scavenge a soft-deleted stream continues its versions and a tombstoned one stays closed", () =>
      Effect.gen(function*() {
        yield* given
        yield* scavenge()
        expect((yield* append("Deleted-1", events(1), { expectedVersion: "no_stream" })).streamVersion).toBe(4)
        expect(versionsOf(yield* readStream("Deleted-1"))).toEqual([4])
        yield* failsWith("StreamDeleted")(append("Gone-1", events(1)))
      }))

    test("positions are never reused: an append after a scavenge gets a higher position than any before", () =>
      Effect.gen(function*() {
        yield* given
        const head = yield* Effect.flatMap(EventStore, (store) => store.headPosition)
        yield* scavenge()
        expect(yield* Effect.flatMap(EventStore, (store) => store.headPosition)).toBe(head)
        const appended = yield* append("Plain-3", events(1))
        expect(appended.positions[0]).toBeGreaterThan(head)
      }))

    test("scavenge of a store with nothing to remove removes nothing", () =>
      Effect.gen(function*() {
        expect(yield* scavenge()).toEqual({ removed: 0, streams: 0 })
        yield* append("Order-1", events(3))
        expect(yield* scavenge()).toEqual({ removed: 0, streams: 0 })
        expect(yield* readAll()).toHaveLength(3)
      }))

    test("scavenge with batchSize 0 fails with InvalidInput on batchSize", () =>
      Effect.gen(function*() {
        expect((yield* failsWith("InvalidInput")(scavenge({ batchSize: 0 }))).field).toBe("batchSize")
      }))
  })

  describe("soft delete", () => {
    test("delete then read: StreamNotFound, no version, not listed; readAll keeps its events until a scavenge", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        yield* append("Order-2", events(1))
        const log = yield* readAll()
        yield* deleteStream("Order-1", { expectedVersion: 3 })
        yield* failsWith("StreamNotFound")(readStream("Order-1"))
        expect(yield* streamVersion("Order-1")).toEqual(Option.none())
        expect((yield* listStreams()).map((s) => s.streamId)).toEqual(["Order-2"])
        expect((yield* listStreams({ category: "Order" })).map((s) => s.streamId)).toEqual(["Order-2"])
        expect(yield* readAll()).toEqual(log)
      }))

    test("delete keeps the metadata, sets truncateBefore to the last version + 1 and counts as a metadata write", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        yield* setStreamMetadata("Order-1", { maxCount: 10, custom: { owner: "a" } })
        yield* deleteStream("Order-1")
        const metadata = yield* getStreamMetadata("Order-1")
        expect(metadata).toMatchObject({ metadataVersion: 2, maxCount: 10, truncateBefore: 4, custom: { owner: "a" } })
        expect(metadata.createdAt).toBeUndefined()
        yield* failsWith("MetadataConcurrencyError")(
          setStreamMetadata("Order-1", { maxCount: 10 }, { expectedMetadataVersion: 1 })
        )
      }))

    test("delete then append: the stream is recreated, versions continue after the last one, and only the new events are read", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3, "Before"))
        yield* deleteStream("Order-1")
        const result = yield* append("Order-1", events(2, "After"), { expectedVersion: "no_stream" })
        expect(result.streamVersion).toBe(5)
        const read = yield* readStream("Order-1")
        expect(read.map((e) => [e.streamVersion, e.eventType])).toEqual([[4, "After1"], [5, "After2"]])
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(5))
        const [listed] = yield* listStreams()
        expect(listed).toMatchObject({ streamId: "Order-1", version: 5 })
        expect((yield* append("Order-1", events(1), { expectedVersion: 5 })).streamVersion).toBe(6)
        expect((yield* readAll()).map((e) => e.streamVersion)).toEqual([1, 2, 3, 4, 5, 6])
      }))

    test("a deleted stream behaves as one that does not exist for expected versions: any and no_stream succeed, others fail with actual 0", () =>
      Effect.gen(function*() {
        for (const [i, expectedVersion] of (["stream_exists", 3, 1] as const).entries()) {
          const streamId = `Order-${i}`
          yield* append(streamId, events(3))
          yield* deleteStream(streamId)
          const error = yield* failsWith("ConcurrencyError")(append(streamId, events(1), { expectedVersion }))
          expect(error).toMatchObject({ streamId, expected: expectedVersion, actual: 0 })
          yield* failsWith("StreamNotFound")(readStream(streamId))
        }
        yield* append("Order-9", events(2))
        yield* deleteStream("Order-9")
        expect((yield* append("Order-9", events(1))).streamVersion).toBe(3)
      }))

    test("delete with an expected version: the current version, stream_exists and any succeed; a stale one fails and deletes nothing", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        for (const expectedVersion of [2, 4, "no_stream"] as const) {
          const error = yield* failsWith("ConcurrencyError")(deleteStream("Order-1", { expectedVersion }))
          expect(error).toMatchObject({ streamId: "Order-1", expected: expectedVersion, actual: 3 })
        }
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([1, 2, 3])
        yield* deleteStream("Order-1", { expectedVersion: 3 })
        yield* append("Order-2", events(1))
        yield* deleteStream("Order-2", { expectedVersion: "stream_exists" })
        yield* append("Order-3", events(1))
        yield* deleteStream("Order-3", { expectedVersion: "any" })
        for (const id of ["Order-1", "Order-2", "Order-3"]) yield* failsWith("StreamNotFound")(readStream(id))
      }))

    test("deleting a stream that does not exist (or no longer does) succeeds with any or no_stream and fails with actual 0 otherwise", () =>
      Effect.gen(function*() {
        yield* deleteStream("Order-1")
        yield* deleteStream("Order-1", { expectedVersion: "no_stream" })
        const error = yield* failsWith("ConcurrencyError")(deleteStream("Order-1", { expectedVersion: 2 }))
        expect(error).toMatchObject({ expected: 2, actual: 0 })
        yield* failsWith("ConcurrencyError")(deleteStream("Order-1", { expectedVersion: "stream_exists" }))
        yield* append("Order-2", events(2))
        yield* deleteStream("Order-2")
        yield* deleteStream("Order-2")
        yield* failsWith("ConcurrencyError")(deleteStream("Order-2", { expectedVersion: 2 }))
        expect(yield* getStreamMetadata("Order-1")).toEqual({ metadataVersion: 0, custom: {}, category: "Order" })
        expect((yield* getStreamMetadata("Order-2")).metadataVersion).toBe(1)
      }))

    test("a recreated stream keeps its metadata: maxCount still applies to the new events", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        yield* setStreamMetadata("Order-1", { maxCount: 2 })
        yield* deleteStream("Order-1")
        yield* append("Order-1", events(3))
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([5, 6])
      }))

    test("a retry of an append stored before the delete still succeeds with the first result, while its events are stored", () =>
      Effect.gen(function*() {
        const batch = events(2)
        const first = yield* append("Order-1", batch, { expectedVersion: "no_stream" })
        yield* deleteStream("Order-1")
        expect(yield* append("Order-1", batch, { expectedVersion: "no_stream" })).toEqual(first)
        yield* failsWith("StreamNotFound")(readStream("Order-1"))
        yield* failsWith("DuplicateEventId")(append("Order-2", batch))
      }))
  })

  describe("tombstones", () => {
    test("tombstone then read and append: StreamDeleted for every read and write, with any expected version", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        yield* tombstoneStream("Order-1", { expectedVersion: 3 })
        expect(yield* failsWith("StreamDeleted")(readStream("Order-1"))).toMatchObject({ streamId: "Order-1" })
        for (const expectedVersion of ["any", "no_stream", "stream_exists", 3, 0] as const) {
          yield* failsWith("StreamDeleted")(append("Order-1", events(1), { expectedVersion }))
        }
        yield* failsWith("StreamDeleted")(setStreamMetadata("Order-1", { maxCount: 1 }))
        yield* failsWith("StreamDeleted")(getStreamMetadata("Order-1"))
        yield* failsWith("StreamDeleted")(deleteStream("Order-1"))
        yield* failsWith("StreamDeleted")(tombstoneStream("Order-1"))
        yield* failsWith("StreamDeleted")(archiveStream("Order-1"))
        expect(yield* streamVersion("Order-1")).toEqual(Option.none())
        expect(yield* listStreams()).toEqual([])
      }))

    test("a tombstoned stream's events stay in readAll until a scavenge removes them", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        yield* append("Order-2", events(1))
        yield* tombstoneStream("Order-1")
        expect(streamIdsOf(yield* readAll())).toEqual(["Order-1", "Order-1", "Order-1", "Order-2"])
        expect(yield* scavenge()).toEqual({ removed: 3, streams: 1 })
        expect(streamIdsOf(yield* readAll())).toEqual(["Order-2"])
        yield* failsWith("StreamDeleted")(readStream("Order-1"))
      }))

    test("a stream that never existed can be tombstoned, and then never created", () =>
      Effect.gen(function*() {
        yield* tombstoneStream("Order-1", { expectedVersion: "no_stream" })
        yield* failsWith("StreamDeleted")(append("Order-1", events(1), { expectedVersion: "no_stream" }))
        yield* failsWith("StreamDeleted")(readStream("Order-1"))
        expect(yield* readAll()).toEqual([])
      }))

    test("tombstone with a stale expected version fails with ConcurrencyError and the stream stays writable", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        const error = yield* failsWith("ConcurrencyError")(tombstoneStream("Order-1", { expectedVersion: 1 }))
        expect(error).toMatchObject({ streamId: "Order-1", expected: 1, actual: 2 })
        yield* failsWith("ConcurrencyError")(tombstoneStream("Order-2", { expectedVersion: "stream_exists" }))
        expect((yield* append("Order-1", events(1), { expectedVersion: 2 })).streamVersion).toBe(3)
        expect((yield* append("Order-2", events(1), { expectedVersion: "no_stream" })).streamVersion).toBe(1)
      }))

    test("a soft-deleted stream can be tombstoned; for the expected version it does not exist", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        yield* deleteStream("Order-1")
        yield* failsWith("ConcurrencyError")(tombstoneStream("Order-1", { expectedVersion: 2 }))
        yield* tombstoneStream("Order-1", { expectedVersion: "no_stream" })
        yield* failsWith("StreamDeleted")(append("Order-1", events(1)))
      }))

    test("a retry of an append stored before the tombstone fails with StreamDeleted: the tombstone wins over idempotency", () =>
      Effect.gen(function*() {
        const batch = events(2)
        yield* append("Order-1", batch, { expectedVersion: "no_stream" })
        yield* tombstoneStream("Order-1")
        yield* failsWith("StreamDeleted")(append("Order-1", batch, { expectedVersion: "no_stream" }))
        yield* failsWith("StreamDeleted")(append("Order-1", batch))
      }))
  })

  describe("archiving", () => {
    test("archive then read: readStream returns every event as before; readAll leaves them out unless includeArchived", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        yield* append("Order-2", events(2))
        yield* append("Order-1", events(1))
        const stream = yield* readStream("Order-1")
        const log = yield* readAll()
        expect(yield* archiveStream("Order-1", { expectedVersion: 4 })).toEqual({ archived: 4 })
        expect(yield* readStream("Order-1")).toEqual(stream)
        expect(yield* readStream("Order-1", { direction: "backward", batchSize: 3 })).toEqual([...stream].reverse())
        expect(yield* readAll()).toEqual(log.filter((e) => e.streamId === "Order-2"))
        expect(yield* readAll({ includeArchived: true })).toEqual(log)
        expect(yield* readAll({ includeArchived: true, batchSize: 2 })).toEqual(log)
        expect(yield* readAll({ includeArchived: true, filter: { streamIds: ["Order-1"] } })).toEqual(stream)
        expect(yield* readAll({ includeArchived: true, filter: { eventTypes: ["Event1"] } })).toEqual(
          log.filter((e) => e.eventType === "Event1")
        )
        expect(yield* streamVersion("Order-1")).toEqual(Option.some(4))
        expect((yield* listStreams()).map((s) => s.streamId)).toEqual(["Order-1", "Order-2"])
      }))

    test("subscribe leaves archived events out, and delivers them in their places with includeArchived", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        yield* append("Order-2", events(2))
        const log = yield* readAll()
        yield* archiveStream("Order-1")
        expect(idsOf(yield* subscribeTake(2, {}))).toEqual(idsOf(log.slice(2)))
        expect(idsOf(yield* subscribeTake(4, { includeArchived: true, batchSize: 1 }))).toEqual(idsOf(log))
      }))

    test("appends to an archived stream go to the hot log; readStream joins both; a second archive moves the rest", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        yield* archiveStream("Order-1")
        const appended = yield* append("Order-1", events(2), { expectedVersion: 2 })
        expect(appended.streamVersion).toBe(4)
        expect(versionsOf(yield* readStream("Order-1", { batchSize: 1 }))).toEqual([1, 2, 3, 4])
        expect(versionsOf(yield* readStream("Order-1", { direction: "backward" }))).toEqual([4, 3, 2, 1])
        expect(positionsOf(yield* readAll())).toEqual(appended.positions)
        expect(yield* archiveStream("Order-1")).toEqual({ archived: 2 })
        expect(yield* readAll()).toEqual([])
        expect(versionsOf(yield* readAll({ includeArchived: true }))).toEqual([1, 2, 3, 4])
      }))

    test("archive with a stale expected version fails with ConcurrencyError and moves nothing", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        const error = yield* failsWith("ConcurrencyError")(archiveStream("Order-1", { expectedVersion: 1 }))
        expect(error).toMatchObject({ expected: 1, actual: 2 })
        expect(yield* readAll()).toHaveLength(2)
        expect(yield* archiveStream("Order-9", { expectedVersion: "no_stream" })).toEqual({ archived: 0 })
        yield* failsWith("ConcurrencyError")(archiveStream("Order-9", { expectedVersion: "stream_exists" }))
      }))

    test("archived events keep their ids: a retry of an archived append succeeds with the first result, the same ids elsewhere are duplicates", () =>
      Effect.gen(function*() {
        const batch = events(2)
        const first = yield* append("Order-1", batch, { expectedVersion: "no_stream" })
        yield* archiveStream("Order-1")
        expect(yield* append("Order-1", batch, { expectedVersion: "no_stream" })).toEqual(first)
        const error = yield* failsWith("DuplicateEventId")(append("Order-2", batch))
        expect(error).toMatchObject({ existingStreamId: "Order-1", existingVersion: 1 })
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([1, 2])
      }))

    test("the metadata of an archived stream still applies, and scavenge removes what it hides from the archive too", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(5))
        yield* archiveStream("Order-1")
        yield* setStreamMetadata("Order-1", { maxCount: 2 })
        expect(versionsOf(yield* readStream("Order-1"))).toEqual([4, 5])
        expect(yield* scavenge()).toEqual({ removed: 3, streams: 1 })
        expect(versionsOf(yield* readAll({ includeArchived: true }))).toEqual([4, 5])
        yield* tombstoneStream("Order-1")
        yield* scavenge()
        expect(yield* readAll({ includeArchived: true })).toEqual([])
      }))
  })

  describe("erasure", () => {
    const withMetadata = (n: number): EventData =>
      event(`Registered${n}`, { name: "Ada Lovelace", email: "ada@example.com", n }, {
        schemaVersion: 2,
        metadata: { correlationId: `req-${n}`, causationId: `cmd-${n}`, ip: "192.0.2.1", userAgent: "x" }
      })

    test("erase then read: data is null and user metadata gone; id, type, versions, position and times stay, marked erasedAt", () =>
      Effect.gen(function*() {
        yield* append("User-1", [withMetadata(1), withMetadata(2)])
        yield* append("User-2", [withMetadata(3)])
        const before = yield* readAll()
        expect(before.every((e) => e.erasedAt === undefined)).toBe(true)
        expect(yield* eraseStream("User-1")).toEqual({ erased: 2 })
        const erased = yield* readStream("User-1")
        expect(erased.map((e) => ({ ...e, erasedAt: undefined }))).toEqual(
          before.slice(0, 2).map((e) => ({
            ...e,
            data: null,
            metadata: { correlationId: e.metadata.correlationId, causationId: e.metadata.causationId },
            erasedAt: undefined
          }))
        )
        for (const e of erased) expect(e.erasedAt).toBeInstanceOf(Date)
        const after = yield* readAll()
        expect(after.slice(0, 2)).toEqual(erased)
        expect(after[2]).toEqual(before[2])
        expect(yield* eraseStream("User-1")).toEqual({ erased: 0 })
      }))

    test("an erased event without correlation ids keeps an empty metadata object", () =>
      Effect.gen(function*() {
        yield* append("User-1", [event("Registered", { name: "x" }, { metadata: { ip: "x" } })])
        yield* eraseStream("User-1")
        const [erased] = yield* readStream("User-1")
        expect(erased?.metadata).toEqual({})
        expect(erased?.data).toBeNull()
      }))

    test("events appended after an erasure are not erased", () =>
      Effect.gen(function*() {
        yield* append("User-1", [withMetadata(1)])
        yield* eraseStream("User-1")
        yield* append("User-1", [withMetadata(2)], { expectedVersion: 1 })
        const read = yield* readStream("User-1")
        expect(read.map((e) => e.erasedAt === undefined)).toEqual([false, true])
        expect(read[1]?.data).toEqual({ name: "Ada Lovelace", email: "ada@example.com", n: 2 })
      }))

    test("erasure reaches archived events and the events of deleted and tombstoned streams", () =>
      Effect.gen(function*() {
        yield* append("User-1", [withMetadata(1)])
        yield* archiveStream("User-1")
        yield* append("User-2", [withMetadata(2)])
        yield* deleteStream("User-2")
        yield* append("User-3", [withMetadata(3)])
        yield* tombstoneStream("User-3")
        for (const id of ["User-1", "User-2", "User-3"]) expect(yield* eraseStream(id)).toEqual({ erased: 1 })
        const all = yield* readAll({ includeArchived: true })
        expect(all).toHaveLength(3)
        for (const e of all) {
          expect(e.data).toBeNull()
          expect(e.erasedAt).toBeInstanceOf(Date)
        }
        expect((yield* readStream("User-1"))[0]?.data).toBeNull()
      }))

    test("erasing a stream that does not exist erases nothing", () =>
      Effect.gen(function*() {
        expect(yield* eraseStream("User-9")).toEqual({ erased: 0 })
        expect((yield* failsWith("InvalidInput")(eraseStream(""))).field).toBe("streamId")
      }))
  })

  describe("lifecycle input", () => {
    test("delete, tombstone and archive refuse invalid stream ids and expected versions with InvalidInput", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1))
        const before = yield* streamView("Order-1")
        for (const operation of [deleteStream, tombstoneStream, archiveStream]) {
          expect((yield* failsWith("InvalidInput")(operation(""))).field).toBe("streamId")
          expect((yield* failsWith("InvalidInput")(operation("Order-1", { expectedVersion: -1 }))).field).toBe(
            "expectedVersion"
          )
          expect(
            (yield* failsWith("InvalidInput")(operation("Order-1", { expectedVersion: "exists" as never }))).field
          ).toBe("expectedVersion")
        }
        expect((yield* failsWith("InvalidInput")(getStreamMetadata("a\u0000b"))).field).toBe("streamId")
        expect((yield* failsWith("InvalidInput")(setStreamMetadata("", {}))).field).toBe("streamId")
        expect((yield* failsWith("InvalidInput")(readAll({ includeArchived: "yes" as never }))).field).toBe(
          "includeArchived"
        )
        expect(yield* streamView("Order-1")).toEqual(before)
      }))
  })
}
