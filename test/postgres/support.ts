/**
 * Connecting the tests to the real PostgreSQL server: each test file gets its
 * own schema, dropped at the end. Without a reachable server the server tests
 * are skipped, except in CI (CI=true), where they must run.
 */
import { PgClient } from "@effect/sql-pg"
import * as SqlClient from "@effect/sql/SqlClient"
import { Duration, Effect, Layer, Redacted } from "effect"
import { PostgresEventStore } from "../../src/postgres/index.js"

export const databaseUrl = process.env.DATABASE_URL ?? "postgres://root@127.0.0.1:5432/test"

export const pgLayer = (maxConnections = 10) =>
  PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections, applicationName: "effect-event-store-test" })

const probe = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`SELECT 1`
}).pipe(Effect.provide(pgLayer(1)), Effect.timeout(Duration.seconds(5)))

/** Whether the server tests run; in CI an unreachable server is a failure, not a skip. */
export const serverAvailable: boolean = await Effect.runPromise(
  probe.pipe(Effect.as(true), Effect.catchAllCause(() => Effect.succeed(false)))
).then((available) => {
  if (!available && process.env.CI) {
    throw new Error(`CI is set but PostgreSQL is not reachable at ${databaseUrl}`)
  }
  if (!available) {
    console.warn(`PostgreSQL tests SKIPPED: no server at ${databaseUrl} (set DATABASE_URL)`)
  }
  return available
})

export const uniqueSchema = (prefix: string) =>
  `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`

/** The store in a fresh schema, and the SqlClient beside it; the schema is dropped when the layer is released. */
export const storeLayer = (
  schema: string,
  maxConnections = 10,
  options?: Omit<PostgresEventStore.PostgresEventStoreOptions, "schema">
) =>
  PostgresEventStore.layer({ ...options, schema }).pipe(
    Layer.provideMerge(
      Layer.scopedDiscard(
        Effect.addFinalizer(() =>
          Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`).pipe(
            Effect.orDie
          )
        )
      ).pipe(Layer.provideMerge(pgLayer(maxConnections)))
    )
  )
