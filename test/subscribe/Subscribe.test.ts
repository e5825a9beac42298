/**
 * Live subscriptions on every backend: catch up, then follow, never ending,
 * each event once and in the order of readAll.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Duration, Effect, Fiber, Layer, Schedule, Stream } from "effect"
import { EventStore } from "../../src/EventStore.js"
import { MemoryEventStore } from "../../src/memory/index.js"
import { PgliteClient } from "../../src/pglite/index.js"
import { PostgresEventStore } from "../../src/postgres/index.js"
import { serverAvailable, storeLayer, uniqueSchema } from "../postgres/support.js"
import { fileClient, startupTimeout } from "../support/postgres.js"

// One embedded database for the file, a schema per test.
const pglite = fileClient(PgliteClient.layer())
beforeAll(() => pglite.start(), startupTimeout)
afterAll(() => pglite.dispose())

const backends: ReadonlyArray<
  { readonly name: string; readonly available: boolean; readonly store: () => Layer.Layer<EventStore, unknown> }
> = [
  { name: "memory", available: true, store: () => MemoryEventStore.layer() },
  {
    name: "PGlite",
    available: true,
    store: () => PostgresEventStore.layer({ schema: uniqueSchema("sub") }).pipe(Layer.provide(pglite.layer))
  },
  { name: "PostgreSQL", available: serverAvailable, store: () => storeLayer(uniqueSchema("sub")) }
]

const take = (n: number, options?: Parameters<EventStore["subscribe"]>[0]) =>
  Effect.flatMap(EventStore, (store) => Stream.runCollect(Stream.take(store.subscribe(options), n))).pipe(
    Effect.map(Chunk.toReadonlyArray)
  )

for (const backend of backends) {
  describe.skipIf(!backend.available)(`subscribe on ${backend.name}`, () => {
    it.live("catches up from the start, then delivers what is appended later, in order, once", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        yield* store.append("Order-1", [{ eventType: "Placed", data: 1 }, { eventType: "Paid", data: 2 }])
        const fiber = yield* Effect.fork(take(6, { batchSize: 1 }))
        yield* Effect.sleep(Duration.millis(30))
        yield* store.append("Order-2", [{ eventType: "Placed", data: 3 }])
        yield* store.append("Order-1", [{ eventType: "Shipped", data: 4 }, { eventType: "Closed", data: 5 }])
        yield* store.append("Order-3", [{ eventType: "Placed", data: 6 }])
        const delivered = yield* Fiber.join(fiber)
        const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
        expect(delivered.map((e) => e.data)).toEqual([1, 2, 3, 4, 5, 6])
        expect(delivered).toEqual(all)
      }).pipe(Effect.provide(backend.store())))

    it.live("takes a retry schedule, which changes nothing while reads succeed", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        yield* store.append("Order-1", [{ eventType: "Placed", data: 1 }, { eventType: "Paid", data: 2 }])
        const delivered = yield* take(2, { retry: Schedule.stop })
        expect(delivered.map((e) => e.data)).toEqual([1, 2])
      }).pipe(Effect.provide(backend.store())))

    it.live("from a checkpoint, with a filter by category and event type", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        const first = yield* store.append("Order-1", [{ eventType: "Placed", data: 1 }, { eventType: "Paid", data: 2 }])
        yield* store.append("Invoice-1", [{ eventType: "Placed", data: 3 }])
        const fiber = yield* Effect.fork(
          take(2, {
            from: (first.positions[0] ?? 0n) + 1n,
            filter: { categories: ["Order"], eventTypes: ["Placed", "Paid"] }
          })
        )
        yield* store.append("Order-2", [{ eventType: "Shipped", data: 4 }, { eventType: "Placed", data: 5 }])
        expect((yield* Fiber.join(fiber)).map((e) => e.data)).toEqual([2, 5])
      }).pipe(Effect.provide(backend.store())))

    it.live("from \"end\" delivers only what is appended after it started", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        yield* store.append("Order-1", [{ eventType: "Placed", data: "old" }])
        const started = yield* Deferred.make<void>()
        const fiber = yield* Effect.fork(
          Effect.flatMap(EventStore, (s) =>
            Stream.runCollect(
              Stream.take(
                Stream.merge(
                  s.subscribe({ from: "end" }),
                  Stream.fromEffect(Deferred.succeed(started, undefined)).pipe(Stream.drain)
                ),
                1
              )
            ))
        )
        yield* Deferred.await(started)
        yield* Effect.sleep(Duration.millis(50))
        yield* store.append("Order-1", [{ eventType: "Paid", data: "new" }])
        expect(Chunk.toReadonlyArray(yield* Fiber.join(fiber)).map((e) => e.data)).toEqual(["new"])
      }).pipe(Effect.provide(backend.store())))

    it.live("per stream: only the named streams' events", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        const fiber = yield* Effect.fork(take(3, { filter: { streamIds: ["Order-7"] } }))
        for (let i = 1; i <= 3; i++) {
          yield* store.append("Order-7", [{ eventType: "Step", data: i }])
          yield* store.append("Order-8", [{ eventType: "Step", data: -i }])
        }
        const delivered = yield* Fiber.join(fiber)
        expect(delivered.map((e) => [e.streamId, e.streamVersion])).toEqual([["Order-7", 1], ["Order-7", 2], [
          "Order-7",
          3
        ]])
      }).pipe(Effect.provide(backend.store())))
  })
}
