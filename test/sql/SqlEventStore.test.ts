/**
 * What only the SQL backends promise, on the PostgreSQL server and on PGlite
 * alike: composing with the caller's transactions, schemas, migrations, the
 * append-only trigger (on the hot log and the archive), rewrites scoped to
 * their operation, and positions past 2^53.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Layer, Option, Stream } from "effect"
import { EventStore } from "../../src/EventStore.js"
import { loader } from "../../src/internal/postgres/migrator.js"
import { PgliteClient } from "../../src/pglite/index.js"
import { Migrations, PostgresEventStore } from "../../src/postgres/index.js"
import { pgLayer, serverAvailable, uniqueSchema } from "../postgres/support.js"
import { startupTimeout } from "../support/wait.js"

/** A store in a fresh schema of the shared database, dropped afterwards. */
const storeIn = (schema: string) =>
  PostgresEventStore.layer({ schema }).pipe(
    Layer.provideMerge(Layer.scopedDiscard(Effect.addFinalizer(() =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`).pipe(Effect.orDie)
    )))
  )

const withStore = <A, E>(schema: string, body: Effect.Effect<A, E, EventStore | SqlClient.SqlClient>) =>
  Effect.provide(body, storeIn(schema))

/** A store in a fresh schema, with only the migrations before `migration`: what an older version left. */
const migratedBefore = (schema: string, migration: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => {
    const table = `${schema}.event_store_migrations`
    return sql.withTransaction(Effect.gen(function*() {
      yield* sql`CREATE SCHEMA ${sql(schema)}`
      yield* sql`CREATE TABLE ${sql(table)} (
        migration_id integer PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), name text NOT NULL)`
      yield* sql`SET LOCAL search_path TO ${sql(schema)}`
      yield* Migrator.make({})({
        loader: Effect.map(loader, (files) => files.filter(([id]) => id < migration)),
        table
      })
    }))
  })

const backends = [
  { name: "PostgreSQL", available: serverAvailable, client: pgLayer(8) },
  { name: "PGlite", available: true, client: PgliteClient.layer() }
] as const

for (const backend of backends) {
  describe.skipIf(!backend.available)(`SQL store on ${backend.name}`, () => {
    layer(backend.client, { timeout: startupTimeout })((it) => {
      it.effect("an append inside the caller's transaction commits with the caller's writes", () => {
        const schema = uniqueSchema("tx_commit")
        return withStore(
          schema,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const store = yield* EventStore
            yield* sql`CREATE TABLE ${sql(`${schema}.orders`)} (id text PRIMARY KEY)`
            yield* sql.withTransaction(Effect.gen(function*() {
              yield* sql`INSERT INTO ${sql(`${schema}.orders`)} VALUES ('o-1')`
              yield* store.append("Order-o1", [{ eventType: "Placed", data: {} }])
            }))
            expect(yield* sql`SELECT id FROM ${sql(`${schema}.orders`)}`).toEqual([{ id: "o-1" }])
            expect(yield* store.streamVersion("Order-o1")).toEqual(Option.some(1))
          })
        )
      })

      it.effect("an append inside a transaction that fails rolls back with the caller's writes", () => {
        const schema = uniqueSchema("tx_rollback")
        return withStore(
          schema,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const store = yield* EventStore
            yield* sql`CREATE TABLE ${sql(`${schema}.orders`)} (id text PRIMARY KEY)`
            const outcome = yield* sql.withTransaction(Effect.gen(function*() {
              yield* sql`INSERT INTO ${sql(`${schema}.orders`)} VALUES ('o-2')`
              yield* store.append("Order-o2", [{ eventType: "Placed", data: {} }])
              return yield* Effect.fail("payment declined" as const)
            })).pipe(Effect.flip)
            expect(outcome).toBe("payment declined")
            expect(yield* sql`SELECT id FROM ${sql(`${schema}.orders`)}`).toEqual([])
            expect(yield* store.streamVersion("Order-o2")).toEqual(Option.none())
            expect(Chunk.size(yield* Stream.runCollect(store.readAll()))).toBe(0)
          })
        )
      })

      it.effect("a version conflict inside a transaction leaves the transaction usable", () => {
        const schema = uniqueSchema("tx_conflict")
        return withStore(
          schema,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const store = yield* EventStore
            yield* store.append("Order-o3", [{ eventType: "Placed", data: {} }])
            const version = yield* sql.withTransaction(Effect.gen(function*() {
              const conflict = yield* store.append("Order-o3", [{ eventType: "Paid", data: {} }], {
                expectedVersion: 5
              }).pipe(
                Effect.flip
              )
              expect(conflict._tag).toBe("ConcurrencyError")
              // The caller can recover within the same transaction.
              return yield* store.append("Order-o3", [{ eventType: "Paid", data: {} }], { expectedVersion: 1 })
            }))
            expect(version.streamVersion).toBe(2)
          })
        )
      })

      it.effect("two stores in two schemas of one database are independent", () => {
        const left = uniqueSchema("left")
        const right = uniqueSchema("right")
        return Effect.gen(function*() {
          const inLeft = yield* withStore(
            left,
            Effect.gen(function*() {
              const store = yield* EventStore
              yield* store.append("Order-1", [{ eventType: "Placed", data: { in: "left" } }])
              return yield* Stream.runCollect(store.readAll())
            }).pipe(
              Effect.zipLeft(withStore(
                right,
                Effect.gen(function*() {
                  const store = yield* EventStore
                  expect(yield* store.streamVersion("Order-1")).toEqual(Option.none())
                  yield* store.append("Order-1", [{ eventType: "Placed", data: { in: "right" } }, {
                    eventType: "Paid",
                    data: {}
                  }])
                  expect(yield* store.streamVersion("Order-1")).toEqual(Option.some(2))
                })
              ))
            )
          )
          expect(Chunk.toReadonlyArray(inLeft).map((e) => e.data)).toEqual([{ in: "left" }])
        })
      })

      it.effect("migrations are idempotent and safe when several start at once", () => {
        const schema = uniqueSchema("migrate")
        return Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const runs = yield* Effect.all(
            Array.from({ length: 4 }, () => Migrations.migrate(schema)),
            { concurrency: "unbounded" }
          )
          // Exactly one of the concurrent runs applied the migrations; the others found them done.
          expect(runs.filter((applied) => applied.length > 0)).toHaveLength(1)
          expect(yield* Migrations.migrate(schema)).toEqual([])
          const tables = yield* sql<{ readonly table_name: string }>`
            SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema} ORDER BY table_name`
          expect(tables.map((t) => t.table_name)).toEqual(
            expect.arrayContaining([
              "checkpoints",
              "event_store_migrations",
              "events",
              "parked_events",
              "snapshots",
              "streams"
            ])
          )
          // Every migration file ran exactly once.
          const files = yield* loader
          const recorded = yield* sql<{ readonly migration_id: number }>`
            SELECT migration_id FROM ${sql(`${schema}.event_store_migrations`)} ORDER BY migration_id`
          expect(recorded.map((row) => row.migration_id)).toEqual(files.map(([id]) => id))
          yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
        })
      })

      it.effect("Migrations.status reports the applied and pending migrations: all pending on a new schema, the rest after an older version's, none after a run", () => {
        const schema = uniqueSchema("status")
        return Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const all = (yield* loader).map(([id, name]) => ({ id, name }))
          // Reading the status of a schema that does not exist creates nothing.
          expect(yield* Migrations.status(schema)).toEqual({ applied: [], pending: all })
          const [created] = yield* sql<
            { readonly exists: boolean }
          >`SELECT to_regnamespace(${schema}) IS NOT NULL AS exists`
          expect(created?.exists).toBe(false)

          yield* migratedBefore(schema, 4)
          const older = yield* Migrations.status(schema)
          expect(older.applied.map(({ id, name }) => ({ id, name }))).toEqual(all.filter(({ id }) => id < 4))
          expect(
            older.applied.every(({ appliedAt }) => appliedAt instanceof Date && !Number.isNaN(appliedAt.getTime()))
          )
            .toBe(true)
          expect(older.pending).toEqual(all.filter(({ id }) => id >= 4))

          yield* Migrations.migrate(schema)
          const current = yield* Migrations.status(schema)
          expect(current.applied.map(({ id, name }) => ({ id, name }))).toEqual(all)
          expect(current.pending).toEqual([])
          yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
        })
      })

      it.effect("stored events cannot be updated, deleted or truncated", () => {
        const schema = uniqueSchema("append_only")
        return withStore(
          schema,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const store = yield* EventStore
            yield* store.append("Order-1", [{ eventType: "Placed", data: { total: 1 } }])
            const events = sql(`${schema}.events`)
            for (
              const attempt of [
                sql`UPDATE ${events} SET data = '{"total": 1000}'`,
                sql`DELETE FROM ${events}`,
                sql`TRUNCATE ${events}`
              ]
            ) {
              const error = yield* Effect.flip(attempt)
              expect(error.message + String((error.cause as { message?: unknown }).message)).toMatch(/append-only/)
            }
            const [event] = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
            expect(event?.data).toEqual({ total: 1 })
          })
        )
      })

      it.effect("archived events cannot be updated, deleted or truncated either", () => {
        const schema = uniqueSchema("archive_only")
        return withStore(
          schema,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const store = yield* EventStore
            yield* store.append("Order-1", [{ eventType: "Placed", data: { total: 1 } }])
            yield* store.archiveStream("Order-1")
            const archive = sql(`${schema}.events_archive`)
            for (
              const attempt of [
                sql`UPDATE ${archive} SET data = '{"total": 1000}'`,
                sql`DELETE FROM ${archive}`,
                sql`TRUNCATE ${archive}`
              ]
            ) {
              const error = yield* Effect.flip(attempt)
              expect(error.message + String((error.cause as { message?: unknown }).message)).toMatch(/append-only/)
            }
            const [event] = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readStream("Order-1")))
            expect(event?.data).toEqual({ total: 1 })
          })
        )
      })

      it.effect("an archive or erasure inside the caller's transaction rolls back with it and leaves no permission to rewrite behind", () => {
        const schema = uniqueSchema("rewrite_scope")
        return withStore(
          schema,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const store = yield* EventStore
            yield* store.append("Order-1", [{ eventType: "Placed", data: { total: 1 } }])
            yield* store.append("Order-2", [{ eventType: "Placed", data: { total: 2 } }])
            const outcome = yield* sql.withTransaction(Effect.gen(function*() {
              expect(yield* store.archiveStream("Order-1")).toEqual({ archived: 1 })
              expect(yield* store.eraseStream("Order-2")).toEqual({ erased: 1 })
              // Still inside the caller's transaction, after both: rewrites are refused again.
              const error = yield* Effect.flip(sql`UPDATE ${sql(`${schema}.events`)} SET data = '{}'`)
              expect(String((error.cause as { message?: unknown }).message)).toMatch(/append-only/)
              return yield* Effect.fail("rolled back" as const)
            })).pipe(Effect.flip)
            expect(outcome).toBe("rolled back")
            const events = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
            expect(events.map((e) => [e.streamId, e.data, e.erasedAt])).toEqual([
              ["Order-1", { total: 1 }, undefined],
              ["Order-2", { total: 2 }, undefined]
            ])
            // And committed, the same two take effect.
            yield* sql.withTransaction(Effect.zip(store.archiveStream("Order-1"), store.eraseStream("Order-2")))
            const after = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll({ includeArchived: true })))
            expect(after.map((e) => [e.streamId, e.data])).toEqual([["Order-1", { total: 1 }], ["Order-2", null]])
            expect(Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll())).map((e) => e.streamId)).toEqual([
              "Order-2"
            ])
          })
        )
      })

      it.effect("a store created before the lifecycle migration is upgraded in place: its streams and events read as before, and it takes appends", () => {
        const schema = uniqueSchema("upgrade")
        return Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* migratedBefore(schema, 4)
          yield* sql`INSERT INTO ${
            sql(`${schema}.streams`)
          } (stream_id, category, version) VALUES ('Order-1', 'Order', 2)`
          yield* sql`INSERT INTO ${sql(`${schema}.events`)}
            (event_id, stream_id, stream_version, category, event_type, schema_version, data, metadata)
            VALUES (gen_random_uuid(), 'Order-1', 1, 'Order', 'Placed', 1, '{"n": 1}', '{}'),
                   (gen_random_uuid(), 'Order-1', 2, 'Order', 'Paid', 1, '{"n": 2}', '{}')`
          // Everything from 0004 on runs, in order.
          const later = (yield* loader).filter(([id]) => id >= 4).map(([id]) => id)
          expect((yield* Migrations.migrate(schema)).map(([id]) => id)).toEqual(later)
          const store = yield* PostgresEventStore.make({ schema })
          const read = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readStream("Order-1")))
          expect(read.map((e) => [e.streamVersion, e.data, e.erasedAt])).toEqual([[1, { n: 1 }, undefined], [2, {
            n: 2
          }, undefined]])
          expect(yield* store.getStreamMetadata("Order-1")).toMatchObject({ metadataVersion: 0, custom: {} })
          expect(
            (yield* store.append("Order-1", [{ eventType: "Shipped", data: {} }], { expectedVersion: 2 })).streamVersion
          ).toBe(3)
          yield* store.deleteStream("Order-1", { expectedVersion: 3 })
          expect(yield* store.streamVersion("Order-1")).toEqual(Option.none())
          yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
        }).pipe(Effect.scoped)
      })

      it.effect("a store created before migration 0007 is upgraded in place: its events read as before, its old snapshots are never used, and the old append function still works", () => {
        const schema = uniqueSchema("upgrade7")
        return Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* migratedBefore(schema, 7)
          const oldAppend = (eventId: string) =>
            sql`SELECT * FROM ${sql(`${schema}.append_events`)}('Order-1', 'Order', 'any', 0, ${`{${eventId}}`}::uuid[],
              ${JSON.stringify([{ id: eventId, type: "Placed", schemaVersion: 1, data: {}, metadata: {} }])}::jsonb)`
          yield* oldAppend(crypto.randomUUID())
          yield* sql`INSERT INTO ${sql(`${schema}.snapshots`)} (stream_id, stream_version, schema_version, state)
            VALUES ('Order-1', 1, 1, '{"n": 1}')`
          // Everything from 0007 on runs, in order.
          const later = (yield* loader).filter(([id]) => id >= 7).map(([id]) => id)
          expect((yield* Migrations.migrate(schema)).map(([id]) => id)).toEqual(later)
          const store = yield* PostgresEventStore.make({ schema })
          const view = yield* store.viewStream("Order-1")
          expect({ version: view.version, firstVersion: view.firstVersion, epoch: view.epoch })
            .toEqual({ version: 1, firstVersion: 1, epoch: 0 })
          const [snapshot] = yield* sql<{ readonly first_version: string }>`
            SELECT first_version::text AS first_version FROM ${sql(`${schema}.snapshots`)} WHERE stream_id = 'Order-1'`
          expect(snapshot?.first_version).toBe("0")
          // A process still running the code from before the migration appends as it did.
          yield* oldAppend(crypto.randomUUID())
          expect(
            (yield* store.append("Order-1", [{ eventType: "Paid", data: {} }], { expectedVersion: 2 })).streamVersion
          ).toBe(3)
          expect(
            Chunk.toReadonlyArray(yield* Stream.runCollect(store.readStream("Order-1"))).map((e) => e.streamVersion)
          )
            .toEqual([1, 2, 3])
          yield* sql`DROP SCHEMA ${sql(schema)} CASCADE`
        }).pipe(Effect.scoped)
      })

      it.effect("positions beyond 2^53 come back exact", () => {
        const schema = uniqueSchema("bigpos")
        return withStore(
          schema,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const store = yield* EventStore
            yield* sql`ALTER SEQUENCE ${sql(`${schema}.events_position_seq`)} RESTART WITH 9007199254740993`
            const result = yield* store.append("Order-1", [{ eventType: "A", data: 1 }, { eventType: "B", data: 2 }])
            expect(result.positions).toEqual([9007199254740993n, 9007199254740994n])
            const read = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll({ from: 9007199254740994n })))
            expect(read.map((e) => e.position)).toEqual([9007199254740994n])
          })
        )
      })

      it.effect("reading the global log inside a REPEATABLE READ transaction is refused rather than risking a skip (a subscription ends at once, without retrying)", () => {
        const schema = uniqueSchema("rr")
        return withStore(
          schema,
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const store = yield* EventStore
            yield* store.append("Order-1", [{ eventType: "A", data: 1 }])
            for (const read of [store.readAll(), Stream.take(store.subscribe(), 1)]) {
              const error = yield* sql.withTransaction(Effect.gen(function*() {
                yield* sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ`
                return yield* Effect.flip(Stream.runCollect(read))
              }))
              expect(error._tag).toBe("StoreError")
              expect(error.message).toMatch(/READ COMMITTED/)
            }
          })
        )
      })
    })
  })
}
