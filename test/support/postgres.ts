/**
 * The SQL backends for tests: one connection pool (or embedded database) per
 * test file, and a new schema (`conf_<random>`) for every store, dropped when
 * the file ends.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import { PostgresEventStore } from "../../src/postgres/index.js"
import { databaseUrl, serverAvailable } from "../postgres/support.js"
import { Aging, type Backend } from "./Harness.js"

const clientLayer = PgClient.layer({
  url: Redacted.make(databaseUrl),
  connectTimeout: "3 seconds",
  maxConnections: 12,
  applicationName: "effect-event-store tests"
})

/** `DATABASE_URL` without its password, for messages. */
export const redactedUrl = databaseUrl.replace(/\/\/([^:@/]*):[^@/]*@/, "//$1:***@")

/**
 * Whether a server answers at `DATABASE_URL` (probed once, in
 * test/postgres/support.ts: skipped with a message where it does not, an error
 * under `CI`).
 */
export const isAvailable = async (): Promise<boolean> => serverAvailable

export interface SchemaFixture extends Backend {
  /** Drops the schemas this fixture created (unless told not to) and closes the client. */
  readonly dispose: () => Promise<void>
}

/**
 * Stores on one shared `SqlClient` (one pool, or one embedded database), each
 * in a schema of its own. Call once per test file; `dispose` it in `afterAll`.
 * An in-memory database goes away as a whole: `dropSchemas: false` saves the work.
 */
export const makeSchemaFixture = (
  name: string,
  sqlClient: Layer.Layer<SqlClient.SqlClient, unknown>,
  options?: { readonly dropSchemas?: boolean | undefined }
): SchemaFixture => {
  const runtime = ManagedRuntime.make(sqlClient)
  const client = Layer.unwrapEffect(Effect.map(runtime.runtimeEffect, (rt) => Layer.succeedContext(rt.context)))
  const schemas: Array<string> = []
  const dropSchemas = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    for (const schema of schemas.splice(0)) {
      yield* sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`
    }
  })
  return {
    name,
    makeStore: ({ maxEventBytes }) =>
      Layer.unwrapEffect(Effect.sync(() => {
        const schema = `conf_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`
        schemas.push(schema)
        // Ages the stored events by rewriting recorded_at (and the streams' updated_at), with the
        // rewrite permission maintenance uses.
        const aging = Layer.effect(
          Aging,
          Effect.map(SqlClient.SqlClient, (sql) => ({
            age: (millis: number) =>
              sql.withTransaction(Effect.gen(function*() {
                yield* sql`SET LOCAL event_store.allow_rewrite = 'on'`
                for (const table of ["events", "events_archive"]) {
                  yield* sql`UPDATE ${sql(`${schema}.${table}`)} SET recorded_at = recorded_at - ${millis} * interval '1 millisecond'`
                }
                // The time of each stream's last append too: the next append's recordedAt is never earlier.
                yield* sql`UPDATE ${sql(`${schema}.streams`)} SET updated_at = updated_at - ${millis} * interval '1 millisecond'`
              }))
          }))
        )
        return Layer.merge(PostgresEventStore.layer({ schema, maxEventBytes }), aging).pipe(Layer.provide(client))
      })),
    // Nothing to drop when no case ran (say, they were skipped): then the client is never started.
    dispose: () =>
      schemas.length > 0 && options?.dropSchemas !== false
        ? runtime.runPromise(dropSchemas).finally(() => runtime.dispose())
        : runtime.dispose()
  }
}

/** The PostgreSQL server at `DATABASE_URL`. */
export const makeFixture = (): SchemaFixture => makeSchemaFixture("PostgreSQL", clientLayer)
