/**
 * Invariant 4, sequentially: the global log lists every event once, in append
 * order, from any position, in any page size, filtered by type or category.
 */
import { describe, expect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import type { EventData } from "../../src/EventData.js"
import { EventStore } from "../../src/EventStore.js"
import type { RecordedEvent } from "../../src/RecordedEvent.js"
import {
  append,
  type Backend,
  collect,
  event,
  expectIncreasing,
  idsOf,
  listStreams,
  makeTest,
  nth,
  positionsOf,
  readAll,
  readStream
} from "../support/Harness.js"

interface Written {
  readonly streamId: string
  readonly events: ReadonlyArray<EventData>
}

/**
 * Appends, in turns, to streams of several categories, some of them traps for
 * a category match that is a prefix test or that splits at the last dash.
 */
const history: ReadonlyArray<Written> = [
  { streamId: "Order-1", events: [event("OrderPlaced"), event("ItemAdded")] },
  { streamId: "Cart-1", events: [event("ItemAdded")] },
  { streamId: "Order-2", events: [event("OrderPlaced")] },
  { streamId: "Orderly-1", events: [event("OrderPlaced")] },
  { streamId: "Order-1", events: [event("OrderShipped")] },
  { streamId: "Order", events: [event("OrderPlaced")] },
  { streamId: "Order-x-y", events: [event("ItemAdded"), event("OrderShipped")] },
  { streamId: "Cart-2", events: [event("CartEmptied")] },
  { streamId: "order-3", events: [event("OrderPlaced")] },
  { streamId: "Cart-1", events: [event("ItemRemoved"), event("ItemAdded")] }
]

const categoryOf: Record<string, string> = {
  "Order-1": "Order",
  "Order-2": "Order",
  "Orderly-1": "Orderly",
  "Order": "Order",
  "Order-x-y": "Order",
  "Cart-1": "Cart",
  "Cart-2": "Cart",
  "order-3": "order"
}

/** What readAll must return, in order, when every append of `history` succeeded. */
const expectedLog = history.flatMap(({ events, streamId }) =>
  events.map((e) => ({ eventId: e.eventId, streamId, eventType: e.eventType }))
)

const summary = (all: ReadonlyArray<RecordedEvent>) =>
  all.map((e) => ({ eventId: e.eventId, streamId: e.streamId, eventType: e.eventType }))

const given = Effect.gen(function*() {
  const positions: Array<bigint> = []
  for (const { events, streamId } of history) {
    const result = yield* append(streamId, events)
    positions.push(...result.positions)
  }
  return positions
})

export const readAllCases = (backend: Backend): void => {
  const test = makeTest(backend)

  describe("readAll", () => {
    test("readAll of an empty store is empty", () =>
      Effect.gen(function*() {
        expect(yield* readAll()).toEqual([])
        expect(yield* readAll({ from: 1n, filter: { categories: ["Order"] } })).toEqual([])
      }))

    test("readAll returns the events of every stream in the order they were appended, at the positions the appends reported", () =>
      Effect.gen(function*() {
        const positions = yield* given
        const all = yield* readAll()
        expect(summary(all)).toEqual(expectedLog)
        expect(positionsOf(all)).toEqual(positions)
        expectIncreasing(positionsOf(all))
      }))

    test("readAll lists every event of every stream exactly once, as readStream has them", () =>
      Effect.gen(function*() {
        yield* given
        const all = yield* readAll({ batchSize: 3 })
        expect(new Set(idsOf(all)).size).toBe(all.length)
        const streams = yield* listStreams()
        let total = 0
        for (const { streamId, version } of streams) {
          const stream = yield* readStream(streamId)
          expect(stream).toHaveLength(version)
          expect(stream).toEqual(all.filter((e) => e.streamId === streamId))
          total += stream.length
        }
        expect(total).toBe(all.length)
      }))

    test("readAll from a position starts at that position, inclusive", () =>
      Effect.gen(function*() {
        const positions = yield* given
        for (const index of [0, 1, 5, positions.length - 1]) {
          const from = nth(positions, index)
          const read = yield* readAll({ from })
          expect(summary(read)).toEqual(expectedLog.slice(index))
          expect(read[0]?.position).toBe(from)
        }
      }))

    test("readAll from one past a position resumes after it: checkpoint + 1n", () =>
      Effect.gen(function*() {
        const positions = yield* given
        const checkpoint = nth(positions, 3)
        expect(summary(yield* readAll({ from: checkpoint + 1n }))).toEqual(expectedLog.slice(4))
      }))

    test("readAll from beyond the last position is empty, and from 0 is everything", () =>
      Effect.gen(function*() {
        const positions = yield* given
        const last = nth(positions, positions.length - 1)
        expect(yield* readAll({ from: last + 1n })).toEqual([])
        expect(yield* readAll({ from: last + 1000n, batchSize: 2 })).toEqual([])
        expect(summary(yield* readAll({ from: 0n }))).toEqual(expectedLog)
      }))

    test("readAll with a limit returns the first events only", () =>
      Effect.gen(function*() {
        const positions = yield* given
        expect(summary(yield* readAll({ limit: 1 }))).toEqual(expectedLog.slice(0, 1))
        expect(summary(yield* readAll({ limit: 4 }))).toEqual(expectedLog.slice(0, 4))
        expect(summary(yield* readAll({ limit: 1000 }))).toEqual(expectedLog)
        expect(summary(yield* readAll({ from: nth(positions, 2), limit: 3 }))).toEqual(expectedLog.slice(2, 5))
      }))

    for (const batchSize of [1, 2, 3, 13]) {
      test(`readAll with batchSize ${batchSize} returns the same events as one read, also with a limit that crosses a page`, () =>
        Effect.gen(function*() {
          const positions = yield* given
          const all = yield* readAll()
          expect(yield* readAll({ batchSize })).toEqual(all)
          expect(yield* readAll({ batchSize, limit: 5 })).toEqual(all.slice(0, 5))
          expect(yield* readAll({ batchSize, limit: 6 })).toEqual(all.slice(0, 6))
          expect(yield* readAll({ batchSize, from: nth(positions, 3), limit: 7 })).toEqual(all.slice(3, 10))
        }))
    }

    test("readAll filtered by event types returns only events of those types, in log order", () =>
      Effect.gen(function*() {
        yield* given
        const placed = yield* readAll({ filter: { eventTypes: ["OrderPlaced"] } })
        expect(summary(placed)).toEqual(expectedLog.filter((e) => e.eventType === "OrderPlaced"))
        const two = yield* readAll({ filter: { eventTypes: ["ItemAdded", "OrderShipped"] } })
        expect(summary(two)).toEqual(
          expectedLog.filter((e) => e.eventType === "ItemAdded" || e.eventType === "OrderShipped")
        )
        expect(yield* readAll({ filter: { eventTypes: ["orderplaced", "Unknown"] } })).toEqual([])
      }))

    test("readAll filtered by categories returns only events of streams whose id before the first dash is the category", () =>
      Effect.gen(function*() {
        yield* given
        const orders = yield* readAll({ filter: { categories: ["Order"] } })
        expect(summary(orders)).toEqual(expectedLog.filter((e) => categoryOf[e.streamId] === "Order"))
        expect(new Set(orders.map((e) => e.streamId))).toEqual(new Set(["Order-1", "Order-2", "Order", "Order-x-y"]))
        const carts = yield* readAll({ filter: { categories: ["Cart", "Orderly"] } })
        expect(summary(carts)).toEqual(
          expectedLog.filter((e) => categoryOf[e.streamId] === "Cart" || categoryOf[e.streamId] === "Orderly")
        )
        expect(summary(yield* readAll({ filter: { categories: ["order"] } }))).toEqual(
          expectedLog.filter((e) => e.streamId === "order-3")
        )
        expect(yield* readAll({ filter: { categories: ["Order-x", "Ord"] } })).toEqual([])
      }))

    test("readAll filtered by event types and categories returns events that match both", () =>
      Effect.gen(function*() {
        yield* given
        const read = yield* readAll({ filter: { eventTypes: ["ItemAdded"], categories: ["Order"] } })
        expect(summary(read)).toEqual(
          expectedLog.filter((e) => e.eventType === "ItemAdded" && categoryOf[e.streamId] === "Order")
        )
        expect(read).toHaveLength(2)
      }))

    test("a filtered readAll pages past long runs of other events, with from, limit and batchSize", () =>
      Effect.gen(function*() {
        yield* given
        const wanted = expectedLog.filter((e) => e.eventType === "ItemAdded")
        expect(summary(yield* readAll({ batchSize: 1, filter: { eventTypes: ["ItemAdded"] } }))).toEqual(wanted)
        expect(summary(yield* readAll({ batchSize: 2, limit: 3, filter: { eventTypes: ["ItemAdded"] } }))).toEqual(
          wanted.slice(0, 3)
        )
        const all = yield* readAll()
        const from = nth(all, 4).position
        expect(summary(yield* readAll({ from, batchSize: 2, filter: { categories: ["Cart"] } }))).toEqual(
          summary(all.slice(4)).filter((e) => categoryOf[e.streamId] === "Cart")
        )
      }))

    test("a filtered readAll finds events after more unrelated events than a page holds", () =>
      Effect.gen(function*() {
        yield* append("Noise-1", Array.from({ length: 25 }, () => event("Noise")))
        yield* append("Signal-1", [event("Signal")])
        yield* append("Noise-1", Array.from({ length: 25 }, () => event("Noise")))
        yield* append("Signal-2", [event("Signal")])
        for (const batchSize of [1, 4, 10]) {
          const signals = yield* readAll({ batchSize, filter: { eventTypes: ["Signal"] } })
          expect(signals.map((e) => e.streamId)).toEqual(["Signal-1", "Signal-2"])
          const byCategory = yield* readAll({ batchSize, filter: { categories: ["Signal"] } })
          expect(byCategory).toEqual(signals)
        }
      }))

    test("readAll filtered by stream ids returns only those streams' events, and combines with the other filters", () =>
      Effect.gen(function*() {
        yield* given
        const two = yield* readAll({ filter: { streamIds: ["Order-1", "Cart-1"] } })
        expect(summary(two)).toEqual(expectedLog.filter((e) => e.streamId === "Order-1" || e.streamId === "Cart-1"))
        const typed = yield* readAll({
          batchSize: 1,
          filter: { streamIds: ["Order-1", "Cart-1"], eventTypes: ["ItemAdded"] }
        })
        expect(summary(typed)).toEqual(
          expectedLog.filter((e) =>
            (e.streamId === "Order-1" || e.streamId === "Cart-1") && e.eventType === "ItemAdded"
          )
        )
        const disjoint = yield* readAll({ filter: { streamIds: ["Cart-1"], categories: ["Order"] } })
        expect(disjoint).toEqual([])
        expect(yield* readAll({ filter: { streamIds: ["Order-1", "Nope-1"] } })).toEqual(
          two.filter((e) => e.streamId === "Order-1")
        )
      }))

    test("readAll ends at the events committed when it started: events appended while it runs are not listed", () =>
      Effect.gen(function*() {
        yield* given
        const before = yield* readAll()
        const seen = yield* collect(
          Stream.flatMap(EventStore, (store) => store.readAll({ batchSize: 2 })).pipe(
            Stream.tap((e) => append(`Late-${e.streamVersion}-${e.eventId.slice(0, 8)}`, [event("Late")]))
          )
        )
        expect(seen).toEqual(before)
        expect(yield* readAll()).toHaveLength(before.length * 2)
      }))

    test("headPosition is 0 on an empty store, then the position of the last event; readAll from headPosition + 1n is empty", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        expect(yield* store.headPosition).toBe(0n)
        const positions = yield* given
        const head = yield* store.headPosition
        expect(head).toBe(nth(positions, positions.length - 1))
        expect(yield* readAll({ from: head + 1n })).toEqual([])
        expect((yield* readAll({ from: head })).map((e) => e.position)).toEqual([head])
        yield* Effect.either(append("Order-1", [event("Rejected")], { expectedVersion: "no_stream" }))
        expect(yield* store.headPosition).toBe(head)
      }))

    test("readAll backward of an empty store is empty", () =>
      Effect.gen(function*() {
        expect(yield* readAll({ direction: "backward" })).toEqual([])
        expect(yield* readAll({ direction: "backward", from: 5n, filter: { categories: ["Order"] } })).toEqual([])
      }))

    test("readAll backward returns the log newest first, the exact reverse of forward, in any page size", () =>
      Effect.gen(function*() {
        yield* given
        const forward = yield* readAll()
        const reversed = [...forward].reverse()
        expect(yield* readAll({ direction: "backward" })).toEqual(reversed)
        for (const batchSize of [1, 2, 3, 13]) {
          expect(yield* readAll({ direction: "backward", batchSize })).toEqual(reversed)
          expect(yield* readAll({ direction: "backward", batchSize, limit: 5 })).toEqual(reversed.slice(0, 5))
        }
      }))

    test("readAll backward from a position starts at that position, inclusive, and goes down to the first event", () =>
      Effect.gen(function*() {
        const positions = yield* given
        const reversed = [...expectedLog].reverse()
        for (const index of [0, 1, 5, positions.length - 1]) {
          const from = nth(positions, index)
          const read = yield* readAll({ direction: "backward", from, batchSize: 2 })
          expect(summary(read)).toEqual(reversed.slice(positions.length - 1 - index))
          expect(read[0]?.position).toBe(from)
        }
        expect(yield* readAll({ direction: "backward", from: 0n })).toEqual([])
        const last = nth(positions, positions.length - 1)
        expect(summary(yield* readAll({ direction: "backward", from: last + 1000n }))).toEqual(reversed)
        expect(summary(yield* readAll({ direction: "backward", from: nth(positions, 6), limit: 3 }))).toEqual(
          reversed.slice(positions.length - 7, positions.length - 4)
        )
      }))

    test("readAll backward applies the filters as forward does, past long runs of other events", () =>
      Effect.gen(function*() {
        yield* given
        yield* append("Noise-1", Array.from({ length: 25 }, () => event("Noise")))
        const all = yield* readAll()
        for (
          const filter of [
            { eventTypes: ["ItemAdded"] },
            { categories: ["Cart", "Orderly"] },
            { streamIds: ["Order-1", "Cart-1"], eventTypes: ["ItemAdded"] },
            { eventTypes: ["Unknown"] }
          ]
        ) {
          const forward = yield* readAll({ filter })
          expect(forward.length).toBeLessThan(all.length)
          for (const batchSize of [1, 4]) {
            expect(yield* readAll({ direction: "backward", batchSize, filter })).toEqual([...forward].reverse())
          }
        }
      }))

    test("readAll backward ends at the events settled when it started: events appended while it runs are not listed", () =>
      Effect.gen(function*() {
        yield* given
        const before = yield* readAll({ direction: "backward" })
        const seen = yield* collect(
          Stream.flatMap(EventStore, (store) => store.readAll({ direction: "backward", batchSize: 2 })).pipe(
            Stream.tap((e) => append(`Late-${e.streamVersion}-${e.eventId.slice(0, 8)}`, [event("Late")]))
          )
        )
        expect(seen).toEqual(before)
      }))

    test("readAll with an unknown direction is InvalidInput", () =>
      Effect.gen(function*() {
        yield* given
        const error = yield* Effect.flip(
          Effect.flatMap(
            EventStore,
            (store) => collect(store.readAll({ direction: "sideways" as unknown as "forward" }))
          )
        )
        expect(error._tag).toBe("InvalidInput")
      }))

    test("readAll filtered by event type prefixes returns the events whose type starts with one of them", () =>
      Effect.gen(function*() {
        yield* given
        const order = yield* readAll({ filter: { eventTypePrefixes: ["Order"] } })
        expect(summary(order)).toEqual(expectedLog.filter((e) => e.eventType.startsWith("Order")))
        const two = yield* readAll({ batchSize: 1, filter: { eventTypePrefixes: ["OrderS", "ItemR"] } })
        expect(summary(two)).toEqual(
          expectedLog.filter((e) => e.eventType === "OrderShipped" || e.eventType === "ItemRemoved")
        )
        expect(yield* readAll({ filter: { eventTypePrefixes: ["order", "Placed"] } })).toEqual([])
        const combined = yield* readAll({ filter: { eventTypePrefixes: ["Item"], categories: ["Cart"] } })
        expect(summary(combined)).toEqual(
          expectedLog.filter((e) => e.eventType.startsWith("Item") && categoryOf[e.streamId] === "Cart")
        )
      }))

    test("readAll filtered by stream id prefixes: a plain character match, no wildcards, any script", () =>
      Effect.gen(function*() {
        yield* given
        for (const streamId of ["50%-1", "50x-1", "a_b-1", "aXb-1", "Ünï-1", "Ün-1", "日本-1"]) {
          yield* append(streamId, [event("Thing")])
        }
        const ids = (filter: { readonly streamIdPrefixes: ReadonlyArray<string> }) =>
          Effect.map(readAll({ filter }), (all) => all.map((e) => e.streamId))
        expect(yield* ids({ streamIdPrefixes: ["Order-"] })).toEqual(
          expectedLog.filter((e) => e.streamId.startsWith("Order-")).map((e) => e.streamId)
        )
        expect(yield* ids({ streamIdPrefixes: ["50%"] })).toEqual(["50%-1"])
        expect(yield* ids({ streamIdPrefixes: ["a_b"] })).toEqual(["a_b-1"])
        expect(yield* ids({ streamIdPrefixes: ["%"] })).toEqual([])
        expect(yield* ids({ streamIdPrefixes: ["_"] })).toEqual([])
        expect(yield* ids({ streamIdPrefixes: ["Ünï"] })).toEqual(["Ünï-1"])
        expect(yield* ids({ streamIdPrefixes: ["Ün"] })).toEqual(["Ünï-1", "Ün-1"])
        expect(yield* ids({ streamIdPrefixes: ["ün", "日"] })).toEqual(["日本-1"])
        expect(yield* ids({ streamIdPrefixes: ["Cart-1", "order"] })).toEqual(
          expectedLog.filter((e) => e.streamId === "Cart-1" || e.streamId === "order-3").map((e) => e.streamId)
        )
      }))

    test("a subscription filtered by prefixes delivers only matching events, also those appended after it started", () =>
      Effect.gen(function*() {
        yield* given
        const wanted = expectedLog.filter((e) => e.eventType.startsWith("Item") && e.streamId.startsWith("Cart"))
        const store = yield* EventStore
        const fiber = yield* store.subscribe({ filter: { eventTypePrefixes: ["Item"], streamIdPrefixes: ["Cart"] } })
          .pipe(Stream.take(wanted.length + 1), Stream.runCollect, Effect.fork)
        yield* append("Order-9", [event("ItemAdded")])
        yield* append("Cart-9", [event("CartEmptied"), event("ItemAdded")])
        const seen = Array.from(yield* Fiber.join(fiber))
        expect(summary(seen).slice(0, wanted.length)).toEqual(wanted)
        expect(seen.map((e) => [e.streamId, e.eventType]).at(-1)).toEqual(["Cart-9", "ItemAdded"])
      }))

    test("subscribeWithCheckpoints delivers subscribe's events in order and checkpoints past what matches nothing", () =>
      Effect.gen(function*() {
        yield* given
        yield* append("Noise-1", Array.from({ length: 25 }, () => event("Noise")))
        const store = yield* EventStore
        const head = yield* store.headPosition
        const filter = { categories: ["Cart"] }
        const items = yield* store.subscribeWithCheckpoints({ batchSize: 4, filter }).pipe(
          Stream.takeUntil((item) => item._tag === "Checkpoint" && item.position >= head),
          Stream.runCollect,
          Effect.map((chunk) => Array.from(chunk))
        )
        const events = items.flatMap((item) => item._tag === "Event" ? [item.event] : [])
        expect(events).toEqual(yield* readAll({ filter }))
        // Events and checkpoints in one increasing order: a checkpoint never
        // claims a position an event after it still has.
        let told = 0n
        for (const item of items) {
          const position = item._tag === "Event" ? item.event.position : item.position
          expect(position > told).toBe(true)
          told = position
        }
        expect(items.at(-1)).toEqual({ _tag: "Checkpoint", position: head })
        const resumed = yield* store.subscribeWithCheckpoints({ from: head + 1n, filter }).pipe(
          Stream.filter((item) => item._tag === "Event"),
          Stream.take(1),
          Stream.runCollect,
          Effect.fork
        )
        yield* append("Noise-2", [event("Noise")])
        yield* append("Cart-7", [event("ItemAdded")])
        const [next] = Array.from(yield* Fiber.join(resumed))
        expect(next?._tag === "Event" && next.event.streamId).toBe("Cart-7")
      }))

    for (
      const [field, filter] of [
        ["filter.eventTypePrefixes", { eventTypePrefixes: [] }],
        ["filter.eventTypePrefixes", { eventTypePrefixes: [""] }],
        ["filter.streamIdPrefixes", { streamIdPrefixes: ["a\u0000"] }],
        ["filter.streamIdPrefixes", { streamIdPrefixes: "Order" as unknown as ReadonlyArray<string> }]
      ] as const
    ) {
      test(`readAll with a bad prefix filter ${JSON.stringify(filter)} is InvalidInput on ${field}`, () =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(readAll({ filter }))
          expect(error._tag).toBe("InvalidInput")
          if (error._tag === "InvalidInput") expect(error.field).toBe(field)
        }))
    }

    test("readAll does not list the events of failed appends", () =>
      Effect.gen(function*() {
        yield* append("Order-1", [event("A")])
        yield* Effect.either(append("Order-1", [event("Rejected")], { expectedVersion: "no_stream" }))
        yield* Effect.either(append("Order-2", [event("Rejected"), event("Bad", { n: Number.NaN })]))
        yield* append("Order-2", [event("B")])
        expect((yield* readAll()).map((e) => e.eventType)).toEqual(["A", "B"])
      }))
  })
}
