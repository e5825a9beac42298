/**
 * The server's layers: `layerAll` provides every service of the store on one
 * connection pool, migrated once, with a runner lock across processes;
 * `layerConfig` and `layerAllConfig` read the connection and the store's
 * options from `Config`. Each test works in a schema of its own.
 */
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigProvider, Duration, Effect, Exit, Layer, Option, Redacted, Scope } from "effect"
import { CheckpointStore } from "../../src/CheckpointStore.js"
import { EventStore } from "../../src/EventStore.js"
import { Generations } from "../../src/Generations.js"
import { loader } from "../../src/internal/postgres/migrator.js"
import { Migrations, PostgresEventStore } from "../../src/postgres/index.js"
import { RunnerLock } from "../../src/RunnerLock.js"
import { SnapshotStore } from "../../src/SnapshotStore.js"
import { patience, startupTimeout } from "../support/wait.js"
import { databaseUrl, pgLayer, serverAvailable, uniqueSchema } from "./support.js"

/** Runs `body`, then drops `schema` on a connection of its own, whatever happened. */
const inSchema = <A, E>(schema: string, body: Effect.Effect<A, E>) =>
  Effect.ensuring(
    body,
    Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`).pipe(
      Effect.provide(pgLayer(1)),
      Effect.orDie
    )
  )

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe.skipIf(!serverAvailable)("PostgresEventStore's server layers", () => {
  it.live(
    "layerAll provides the store, checkpoints, snapshots, generations, a runner lock and the SqlClient, in one schema, migrated",
    () => {
      const schema = uniqueSchema("layer_all")
      return inSchema(
        schema,
        Effect.gen(function*() {
          const store = yield* EventStore
          const checkpoints = yield* CheckpointStore
          const snapshots = yield* SnapshotStore
          const generations = yield* Generations
          const lock = yield* RunnerLock
          const sql = yield* SqlClient.SqlClient

          expect((yield* Migrations.status(schema)).pending).toEqual([])
          const [position = 0n] = (yield* store.append("Order-1", [{ eventType: "Placed", data: {} }])).positions
          yield* checkpoints.save("orders", position)
          expect(yield* checkpoints.load("orders")).toEqual(Option.some(position))
          yield* snapshots.save("Order-1", { version: 1, firstVersion: 1, epoch: 0, schemaVersion: 1, state: { n: 1 } })
          expect(Option.map(yield* snapshots.load("Order-1"), (s) => s.state)).toEqual(Option.some({ n: 1 }))
          expect(yield* generations.current("orders")).toEqual({ active: 1, building: undefined })
          yield* Effect.scoped(lock.acquire("orders"))

          // Every row went to the schema given, through the SqlClient provided beside the store.
          const [counts] = yield* sql<
            { readonly events: string; readonly checkpoints: string; readonly snapshots: string }
          >`
          SELECT (SELECT count(*) FROM ${sql(`${schema}.events`)})::text AS events,
                 (SELECT count(*) FROM ${sql(`${schema}.checkpoints`)})::text AS checkpoints,
                 (SELECT count(*) FROM ${sql(`${schema}.snapshots`)})::text AS snapshots`
          expect(counts).toEqual({ events: "1", checkpoints: "1", snapshots: "1" })
          const recorded = yield* sql<{ readonly migration_id: number }>`
          SELECT migration_id FROM ${sql(`${schema}.event_store_migrations`)} ORDER BY migration_id`
          expect(recorded.map((row) => row.migration_id)).toEqual((yield* loader).map(([id]) => id))
        }).pipe(
          Effect.provide(PostgresEventStore.layerAll({ url: Redacted.make(databaseUrl), schema, maxConnections: 4 }))
        )
      )
    },
    startupTimeout
  )

  it.live(
    "layerAll's runner lock holds across separate pools, as across processes, and is released with its scope",
    () => {
      const schema = uniqueSchema("layer_all_lock")
      const serverLayer = () =>
        PostgresEventStore.layerAll({ url: Redacted.make(databaseUrl), schema, maxConnections: 3 })
      return inSchema(
        schema,
        Effect.gen(function*() {
          const first = yield* Layer.build(serverLayer())
          const second = yield* Layer.build(serverLayer())
          const lockOf = (context: typeof first) => Effect.provide(RunnerLock, context)
          const holder = yield* Scope.make()
          yield* Effect.flatMap(lockOf(first), (lock) => lock.acquire("orders")).pipe(Scope.extend(holder))
          // The other pool does not get it while it is held…
          const meanwhile = yield* Effect.flatMap(lockOf(second), (lock) => Effect.scoped(lock.acquire("orders"))).pipe(
            Effect.timeoutOption(Duration.millis(500))
          )
          expect(Option.isNone(meanwhile)).toBe(true)
          // …and gets it once the holder lets go.
          yield* Scope.close(holder, Exit.void)
          const after = yield* Effect.flatMap(
            lockOf(second),
            (lock) => Effect.scoped(Effect.as(lock.acquire("orders"), "acquired"))
          ).pipe(
            Effect.timeoutOption(patience)
          )
          expect(after).toEqual(Option.some("acquired"))
        }).pipe(Effect.scoped)
      )
    },
    startupTimeout
  )

  it.live(
    "layerAllConfig reads the URL, the schema and the pool size from Config (by default DATABASE_URL, EVENT_STORE_SCHEMA, DATABASE_MAX_CONNECTIONS)",
    () => {
      const schema = uniqueSchema("layer_all_config")
      return inSchema(
        schema,
        Effect.gen(function*() {
          const store = yield* EventStore
          const client = yield* PgClient.PgClient
          yield* store.append("Order-1", [{ eventType: "Placed", data: {} }])
          expect(client.config.maxConnections).toBe(3)
          const sql = yield* SqlClient.SqlClient
          const [row] = yield* sql<{ readonly events: string }>`SELECT count(*)::text AS events FROM ${
            sql(`${schema}.events`)
          }`
          expect(row?.events).toBe("1")
          yield* Effect.flatMap(RunnerLock, (lock) => Effect.scoped(lock.acquire("orders")))
          yield* Effect.flatMap(CheckpointStore, (checkpoints) => checkpoints.load("orders"))
        }).pipe(
          Effect.provide(PostgresEventStore.layerAllConfig()),
          withEnv({ DATABASE_URL: databaseUrl, EVENT_STORE_SCHEMA: schema, DATABASE_MAX_CONNECTIONS: "3" })
        )
      )
    },
    startupTimeout
  )

  it.live("layerConfig provides the store and its SqlClient from a Config of the caller's own", () => {
    const schema = uniqueSchema("layer_config")
    const config = {
      url: Config.redacted("DATABASE_URL"),
      schema: Config.succeed(schema)
    }
    return inSchema(
      schema,
      Effect.gen(function*() {
        const store = yield* EventStore
        yield* store.append("Order-1", [{ eventType: "Placed", data: {} }])
        const sql = yield* SqlClient.SqlClient
        const [row] = yield* sql<{ readonly events: string }>`SELECT count(*)::text AS events FROM ${
          sql(`${schema}.events`)
        }`
        expect(row?.events).toBe("1")
      }).pipe(
        Effect.provide(PostgresEventStore.layerConfig(config)),
        withEnv({ DATABASE_URL: databaseUrl })
      )
    )
  }, startupTimeout)

  it.live(
    "without DATABASE_URL the layers fail with a ConfigError; an invalid schema is an InvalidInput; the URL never shows",
    () =>
      Effect.gen(function*() {
        const missing = yield* Effect.flip(
          Effect.provide(EventStore, PostgresEventStore.layerAllConfig()).pipe(withEnv({}))
        )
        expect(missing._tag).toBe("ConfigError")
        expect(String(missing)).toContain("DATABASE_URL")

        const invalid = yield* Effect.flip(
          Effect.provide(EventStore, PostgresEventStore.layerConfig()).pipe(
            withEnv({ DATABASE_URL: databaseUrl, EVENT_STORE_SCHEMA: "Not A Schema" })
          )
        )
        expect(invalid._tag).toBe("InvalidInput")

        const secret = "postgres://someone:hunter2@127.0.0.1:1/nowhere"
        const resolved = yield* PostgresEventStore.config.pipe(withEnv({ DATABASE_URL: secret }))
        expect(String(resolved.url)).not.toContain("hunter2")
        expect(resolved.url !== undefined && Redacted.value(resolved.url)).toBe(secret)
      }),
    startupTimeout
  )
})
