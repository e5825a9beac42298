/**
 * What only the in-memory backend can get wrong; the shared conformance suite
 * holds it to the semantics every backend has.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Duration, Effect, Either, Option, Stream, TestClock } from "effect"
import { EventStore } from "../../src/EventStore.js"
import { MemoryEventStore } from "../../src/memory/index.js"

const collect = <A, E>(stream: Stream.Stream<A, E>) => Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

describe("MemoryEventStore", () => {
  it.effect("hands out a fresh copy of every event, so a caller cannot change the store", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const data = { items: [{ sku: "A", quantity: 1 }], note: "first" }
      yield* store.append("Order-1", [{ eventType: "Placed", data, metadata: { correlationId: "c-1", tags: ["x"] } }])
      // Neither the appended value nor a read one is the stored one.
      data.items.push({ sku: "B", quantity: 2 })

      const [first] = yield* collect(store.readStream("Order-1"))
      const placed = first?.data as { items: Array<unknown>; note: string }
      placed.items.length = 0
      placed.note = "changed"
      ;(first?.metadata.tags as Array<unknown>).push("y")
      first?.recordedAt.setTime(123_456)

      const expected = {
        data: { items: [{ sku: "A", quantity: 1 }], note: "first" },
        metadata: { correlationId: "c-1", tags: ["x"] },
        recordedAt: new Date(0)
      }
      const [again] = yield* collect(store.readStream("Order-1"))
      const [viaAll] = yield* collect(store.readAll())
      expect(again).toMatchObject(expected)
      expect(viaAll).toMatchObject(expected)
      expect(again?.data).not.toBe(viaAll?.data)
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("gives object keys back in jsonb's order: shorter keys first, then bytewise", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      yield* store.append("Doc-1", [{ eventType: "Written", data: { bb: 1, é: 2, a: { zz: 1, y: 2 }, "10": 3, z: 4 } }])
      const [event] = yield* collect(store.readAll())
      // As `SELECT '{...}'::jsonb` returns it, parsed by the driver (integer keys first, as JS orders them).
      expect(JSON.stringify(event?.data)).toBe(`{"10":3,"a":{"y":2,"zz":1},"z":4,"bb":1,"é":2}`)
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("of 50 racing appends that expect no stream, exactly one wins", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      const results = yield* Effect.all(
        Array.from({ length: 50 }, (_, i) =>
          Effect.yieldNow().pipe(
            Effect.zipRight(store.append("Race-1", [{ eventType: "Won", data: { writer: i } }], {
              expectedVersion: i % 2 === 0 ? 0 : "no_stream"
            })),
            Effect.either
          )),
        { concurrency: "unbounded" }
      )
      const winners = results.filter(Either.isRight)
      const losers = results.filter(Either.isLeft).map((result) => result.left)
      expect(winners).toHaveLength(1)
      expect(winners[0]?.right).toEqual({ streamVersion: 1, positions: [1n] })
      expect(losers).toHaveLength(49)
      for (const error of losers) {
        expect(error).toMatchObject({ _tag: "ConcurrencyError", streamId: "Race-1", actual: 1 })
      }
      expect(yield* store.streamVersion("Race-1")).toEqual(Option.some(1))
      expect(yield* collect(store.readAll())).toHaveLength(1)
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("lists stream ids in code point order, astral characters last, as COLLATE \"C\" does", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      // UTF-16 code units would put U+1F600 (a surrogate pair) before U+E000 and U+FFFD.
      const ids = ["a-\u{1F600}", "a-\uFFFD", "a-z", "a-\uE000", "a-\u{10000}", "a"]
      for (const id of ids) yield* store.append(id, [{ eventType: "E", data: null }])
      const ordered = ["a", "a-z", "a-\uE000", "a-\uFFFD", "a-\u{10000}", "a-\u{1F600}"]

      const listed = yield* collect(store.listStreams({ batchSize: 2 }))
      expect(listed.map((stream) => stream.streamId)).toEqual(ordered)
      const after = yield* collect(store.listStreams({ after: "a-\uE000", category: "a", limit: 2 }))
      expect(after.map((stream) => stream.streamId)).toEqual(["a-\uFFFD", "a-\u{10000}"])
      const afterAstral = yield* collect(store.listStreams({ after: "a-\u{10000}" }))
      expect(afterAstral.map((stream) => stream.streamId)).toEqual(["a-\u{1F600}"])
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("a read sees what was committed when it began, not the appends made while it pages", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      yield* store.append("Feed-1", [1, 2, 3].map((n) => ({ eventType: "E", data: n })))
      const appendOne = store.append("Feed-1", [{ eventType: "E", data: 0 }])
      // Each element read appends another; a read that followed the live state would never end.
      const all = yield* collect(store.readAll({ batchSize: 1 }).pipe(Stream.tap(() => appendOne), Stream.take(20)))
      const stream = yield* collect(
        store.readStream("Feed-1", { batchSize: 1 }).pipe(Stream.tap(() => appendOne), Stream.take(20))
      )
      expect(all.map((event) => event.data)).toEqual([1, 2, 3])
      expect(stream.map((event) => event.streamVersion)).toEqual([1, 2, 3, 4, 5, 6])
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("stamps each append with one time from the Clock", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      yield* TestClock.adjust(Duration.seconds(90))
      yield* store.append("Clock-1", [{ eventType: "E", data: 1 }, { eventType: "E", data: 2 }])
      yield* TestClock.adjust(Duration.seconds(30))
      yield* store.append("Clock-1", [{ eventType: "E", data: 3 }])
      const events = yield* collect(store.readStream("Clock-1"))
      expect(events.map((event) => event.recordedAt.getTime())).toEqual([90_000, 90_000, 120_000])
      const [info] = yield* collect(store.listStreams())
      expect([info?.createdAt.getTime(), info?.updatedAt.getTime()]).toEqual([90_000, 120_000])
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.effect("reads a stream of 100,000 events in pages without rescanning it", () =>
    Effect.gen(function*() {
      const store = yield* EventStore
      for (let batch = 0; batch < 100; batch++) {
        yield* store.append(
          "Big-1",
          Array.from({ length: 1000 }, (_, i) => ({ eventType: "E", data: batch * 1000 + i }))
        )
      }
      const count = yield* Stream.runCount(store.readStream("Big-1", { batchSize: 100 }))
      const last = yield* collect(store.readStream("Big-1", { direction: "backward", limit: 2 }))
      const tail = yield* collect(store.readAll({ from: 99_999n }))
      expect(count).toBe(100_000)
      expect(last.map((event) => event.streamVersion)).toEqual([100_000, 99_999])
      expect(tail.map((event) => event.position)).toEqual([99_999n, 100_000n])
    }).pipe(Effect.provide(MemoryEventStore.layer())))
})
