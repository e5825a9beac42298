/**
 * Rebuilding a SQL read model without downtime: readers keep seeing the
 * complete old model until the new generation has caught up, then the new one.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import { EventStore } from "../../src/EventStore.js"
import { PgliteClient } from "../../src/pglite/index.js"
import { PostgresCheckpointStore, PostgresEventStore, PostgresGenerations } from "../../src/postgres/index.js"
import * as Projection from "../../src/Projection.js"
import * as RunnerLock from "../../src/RunnerLock.js"
import { serverAvailable, storeLayer, uniqueSchema } from "../postgres/support.js"
import { fileClient, startupTimeout } from "../support/postgres.js"
import { eventually as waitUntil } from "../support/wait.js"

// The embedded database starts before the test, not in it.
const pglite = fileClient(PgliteClient.layer())
beforeAll(() => pglite.start(), startupTimeout)
afterAll(() => pglite.dispose())

const servicesIn = (schema: string) =>
  Layer.mergeAll(
    PostgresCheckpointStore.layer({ schema }),
    PostgresGenerations.layer({ schema }),
    RunnerLock.layerLocal
  )

const backends = [
  {
    name: "PGlite",
    available: true,
    schema: uniqueSchema("rebuild"),
    layer(this: { readonly schema: string }) {
      return servicesIn(this.schema).pipe(
        Layer.provideMerge(PostgresEventStore.layer({ schema: this.schema })),
        Layer.provideMerge(pglite.layer)
      )
    }
  },
  {
    name: "PostgreSQL",
    available: serverAvailable,
    schema: uniqueSchema("rebuild"),
    layer(this: { readonly schema: string }) {
      return servicesIn(this.schema).pipe(Layer.provideMerge(storeLayer(this.schema, 8)))
    }
  }
] as const

for (const backend of backends) {
  describe.skipIf(!backend.available)(`rebuilding a read model on ${backend.name}`, () => {
    it.live("readers see the complete old model until the rebuilt one has caught up, then the new one", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore
        const table = `${backend.schema}.order_totals`
        // Version 1 of the read model sums amounts; version 2 (the fix) counts cents.
        const readModel = (factor: number) =>
          Projection.make({
            name: "order-totals",
            tables: { totals: table },
            batchSize: 5,
            setup: (tables) =>
              sql`CREATE TABLE ${sql(tables.totals)} (order_id text PRIMARY KEY, total bigint NOT NULL)`,
            handle: (event, tables) =>
              sql`INSERT INTO ${sql(tables.totals)} VALUES (${event.streamId}, ${
                (event.data as { amount: number }).amount * factor
              })
                ON CONFLICT (order_id) DO UPDATE SET total = ${sql(tables.totals)}.total + EXCLUDED.total`
          })
        // -1 until the view exists.
        const sum = sql<{ readonly total: string | null }>`SELECT sum(total)::text AS total FROM ${sql(table)}`.pipe(
          Effect.map(([row]) => Number(row?.total ?? 0)),
          Effect.orElseSucceed(() => -1)
        )

        yield* Effect.forEach(
          Array.from({ length: 60 }, (_, i) => i),
          (i) => store.append(`Order-${i % 6}`, [{ eventType: "ItemAdded", data: { amount: i } }]),
          { discard: true }
        )
        const v1Total = Array.from({ length: 60 }, (_, i) => i).reduce((a, b) => a + b, 0)

        yield* Effect.scoped(Effect.gen(function*() {
          const v1 = yield* Projection.start(readModel(1))
          yield* waitUntil(Effect.map(sum, (total) => total === v1Total), "version 1 is complete")
          expect((yield* v1.status).generation).toBe(1)
        }))

        // Version 2 is deployed: its runner serves generation 1 and builds generation 2.
        yield* Effect.scoped(Effect.gen(function*() {
          const v2 = yield* Projection.start(readModel(100))
          expect(yield* Projection.rebuild(readModel(100))).toBe(2)
          const seen = yield* Ref.make<ReadonlySet<number>>(new Set())
          yield* waitUntil(
            Effect.gen(function*() {
              const total = yield* sum
              yield* Ref.update(seen, (all) => new Set([...all, total]))
              return total === v1Total * 100
            }),
            "version 2 is live"
          )
          // Every reader saw one complete model or the other, never half of one.
          expect([...(yield* Ref.get(seen))].sort((a, b) => a - b)).toEqual([v1Total, v1Total * 100])
          yield* waitUntil(
            Effect.map(v2.status, (s) => s.generation === 2 && s.rebuild === undefined),
            "the switch shows in status"
          )
          // New events reach the new generation, and the old one is dropped.
          yield* store.append("Order-1", [{ eventType: "ItemAdded", data: { amount: 1 } }])
          yield* waitUntil(Effect.map(sum, (total) => total === v1Total * 100 + 100), "live on version 2")
          const oldTables = yield* sql<
            { readonly exists: boolean }
          >`SELECT to_regclass(${`${table}_g1`}) IS NOT NULL AS exists`
          expect(oldTables[0]?.exists).toBe(false)
        }))
      }).pipe(Effect.provide(backend.layer())))
  })
}
