/**
 * Read your own writes: `Projection.awaitPosition` returns once the projection
 * has applied everything it takes up to a position, and times out with a
 * typed error when it does not get there.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import type { CheckpointStore } from "../../src/CheckpointStore.js"
import { EventStore } from "../../src/EventStore.js"
import { MemoryEventStore } from "../../src/memory/index.js"
import { PgliteClient } from "../../src/pglite/index.js"
import { PostgresCheckpointStore, PostgresEventStore } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import * as RunnerLock from "../../src/RunnerLock.js"
import { serverAvailable, storeLayer, uniqueSchema } from "../postgres/support.js"
import { fileClient, startupTimeout } from "../support/postgres.js"

const pglite = fileClient(PgliteClient.layer())
beforeAll(() => pglite.start(), startupTimeout)
afterAll(() => pglite.dispose())

interface Backend {
  readonly name: string
  readonly available: boolean
  readonly layer: () => Layer.Layer<EventStore | CheckpointStore | RunnerLock.RunnerLock, unknown>
}

const backends: ReadonlyArray<Backend> = [
  { name: "memory", available: true, layer: () => MemoryEventStore.layerAll() },
  {
    name: "PGlite",
    available: true,
    layer: () => {
      const schema = uniqueSchema("await")
      return Layer.merge(PostgresCheckpointStore.layer({ schema }), RunnerLock.layerLocal).pipe(
        Layer.provideMerge(PostgresEventStore.layer({ schema })),
        Layer.provideMerge(pglite.layer)
      )
    }
  },
  {
    name: "PostgreSQL",
    available: serverAvailable,
    layer: () => {
      const schema = uniqueSchema("await")
      return Layer.merge(PostgresCheckpointStore.layer({ schema }), RunnerLock.layerLocal).pipe(
        Layer.provideMerge(storeLayer(schema, 8))
      )
    }
  }
]

// Generous: only a broken wait reaches it, even on a loaded machine.
const patience = { timeout: "60 seconds" } as const

const lastOf = (positions: ReadonlyArray<bigint>): bigint => positions[positions.length - 1] ?? 0n

for (const backend of backends) {
  describe.skipIf(!backend.available)(`Projection.awaitPosition on ${backend.name}`, () => {
    it.live("returns once the projection has applied the append: the read model then shows it", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        const model = yield* Ref.make<ReadonlyArray<string>>([])
        const projection = Projection.make({
          name: "orders",
          batchSize: 3,
          handle: (event) => Ref.update(model, (ids) => [...ids, event.eventId])
        })
        yield* Projection.start(projection)
        for (let round = 0; round < 5; round++) {
          const appended = yield* store.append(`Order-${round}`, [
            { eventType: "OrderPlaced", data: { round } },
            { eventType: "ItemAdded", data: { round } }
          ])
          yield* Projection.awaitPosition(projection, lastOf(appended.positions), patience)
          const ids = yield* Ref.get(model)
          expect(ids).toHaveLength(2 * (round + 1))
          expect((yield* Projection.status(projection)).position).toBeGreaterThanOrEqual(lastOf(appended.positions))
        }
      }).pipe(Effect.scoped, Effect.provide(backend.layer())))

    it.live("a filtered projection has passed a position when nothing for it lies before it, checkpoint or not", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        const projection = Projection.make({
          name: "shipped",
          batchSize: 50,
          filter: { eventTypes: ["OrderShipped"] },
          handle: () => Effect.void
        })
        yield* Projection.start(projection)
        const shipped = yield* store.append("Order-1", [{ eventType: "OrderShipped", data: {} }])
        yield* Projection.awaitPosition(projection, lastOf(shipped.positions), patience)
        // Events it does not take: its checkpoint stays (fewer than a batch), the wait still ends.
        const other = yield* store.append("Order-2", [{ eventType: "OrderPlaced", data: {} }])
        yield* Projection.awaitPosition(projection, lastOf(other.positions), patience)
        expect((yield* Projection.status(projection)).position).toBe(lastOf(shipped.positions))
      }).pipe(Effect.scoped, Effect.provide(backend.layer())))

    it.live("without a runner it times out with ProjectionWaitTimeout, naming where the projection is", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        const projection = Projection.make({ name: "idle", handle: () => Effect.void })
        const appended = yield* store.append("Order-1", [{ eventType: "OrderPlaced", data: {} }])
        const error = yield* Effect.flip(
          Projection.awaitPosition(projection, lastOf(appended.positions), { timeout: "300 millis" })
        )
        expect(error._tag).toBe("ProjectionWaitTimeout")
        if (error._tag === "ProjectionWaitTimeout") {
          expect(error).toMatchObject({ projection: "idle", position: lastOf(appended.positions), reached: 0n })
          expect(error.message).toContain(`had not reached position ${lastOf(appended.positions)}`)
        }
      }).pipe(Effect.provide(backend.layer())))

    it.live("a position that is not a non-negative bigint is InvalidInput", () =>
      Effect.gen(function*() {
        const projection = Projection.make({ name: "any", handle: () => Effect.void })
        const error = yield* Effect.flip(Projection.awaitPosition(projection, -1n))
        expect(error._tag).toBe("InvalidInput")
      }).pipe(Effect.provide(backend.layer())))
  })
}
