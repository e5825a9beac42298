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
import type { CheckpointStore } from "../../src/CheckpointStore.js"
import { PostgresCheckpointStore, PostgresEventStore } from "../../src/postgres/index.js"
import { databaseUrl, serverAvailable } from "../postgres/support.js"
import { Aging, type Backend } from "./Harness.js"
export { startupTimeout } from "./wait.js"

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

/**
 * One client (a pool, or an embedded database) for a whole test file: `start`
 * it in `beforeAll` (with `startupTimeout`) and `dispose` it in `afterAll`.
 * Starting PGlite costs seconds of CPU (tens of seconds on a busy machine), so
 * a file starts one and gives each test a schema of its own, and the start is
 * no test's time.
 */
export interface FileClient<A> {
  /** The client's services; every store built on it shares them. */
  readonly layer: Layer.Layer<A>
  readonly start: () => Promise<void>
  readonly dispose: () => Promise<void>
  readonly run: <X, E>(effect: Effect.Effect<X, E, A>) => Promise<X>
}

export const fileClient = <A, E>(client: Layer.Layer<A, E>): FileClient<A> => {
  const runtime = ManagedRuntime.make(client)
  return {
    layer: Layer.unwrapEffect(Effect.map(runtime.runtimeEffect, (rt) => Layer.succeedContext(rt.context))).pipe(
      Layer.orDie
    ),
    start: () => runtime.runPromise(Effect.void),
    dispose: () => runtime.dispose(),
    run: (effect) => runtime.runPromise(effect)
  }
}

export interface SchemaFixture extends Backend {
  /** A new, empty `CheckpointStore`, in a schema of its own, every time the layer is provided. */
  readonly makeCheckpoints: () => Layer.Layer<CheckpointStore, unknown>
  /** Starts the shared client; call in `beforeAll` with `startupTimeout`. */
  readonly start: () => Promise<void>
  /** Closes the client (each store's schema is dropped when the store is released). */
  readonly dispose: () => Promise<void>
}

/**
 * Stores on one shared `SqlClient` (one pool, or one embedded database), each
 * in a schema of its own, dropped when the case's store is released (so that
 * the file's end has nothing left to do). Call once per test file; `start` it
 * in `beforeAll` and `dispose` it in `afterAll`. An in-memory database goes
 * away as a whole: `dropSchemas: false` saves the work.
 */
export const makeSchemaFixture = (
  name: string,
  sqlClient: Layer.Layer<SqlClient.SqlClient, unknown>,
  options?: { readonly dropSchemas?: boolean | undefined }
): SchemaFixture => {
  const shared = fileClient(sqlClient)
  const dropSchema = (schema: string) =>
    Layer.scopedDiscard(
      Effect.addFinalizer(() =>
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`DROP SCHEMA IF EXISTS ${sql(schema)} CASCADE`).pipe(
          Effect.orDie
        )
      )
    )
  // Built before the store and so released after it: the drop does not pull
  // the schema from under the store's own last queries.
  const clientFor = (schema: string) =>
    options?.dropSchemas === false ? shared.layer : dropSchema(schema).pipe(Layer.provideMerge(shared.layer))
  const freshSchema = () => `conf_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`
  return {
    name,
    makeStore: ({ maxEventBytes }) =>
      Layer.unwrapEffect(Effect.sync(() => {
        const schema = freshSchema()
        // Ages the stored events by rewriting recorded_at (and the streams' updated_at), with the
        // rewrite permission maintenance uses.
        const aging = Layer.effect(
          Aging,
          Effect.map(SqlClient.SqlClient, (sql) => ({
            age: (millis: number) =>
              sql.withTransaction(Effect.gen(function*() {
                yield* sql`SET LOCAL event_store.allow_rewrite = 'on'`
                for (const table of ["events", "events_archive"]) {
                  yield* sql`UPDATE ${
                    sql(`${schema}.${table}`)
                  } SET recorded_at = recorded_at - ${millis} * interval '1 millisecond'`
                }
                // The time of each stream's last append too: the next append's recordedAt is never earlier.
                yield* sql`UPDATE ${
                  sql(`${schema}.streams`)
                } SET updated_at = updated_at - ${millis} * interval '1 millisecond'`
              }))
          }))
        )
        const store = Layer.merge(PostgresEventStore.layer({ schema, maxEventBytes }), aging)
        return store.pipe(Layer.provide(clientFor(schema)))
      })),
    makeCheckpoints: () =>
      Layer.unwrapEffect(Effect.sync(() => {
        const schema = freshSchema()
        return PostgresCheckpointStore.layer({ schema }).pipe(Layer.provide(clientFor(schema)))
      })),
    start: shared.start,
    dispose: shared.dispose
  }
}

/** The PostgreSQL server at `DATABASE_URL`. */
export const makeFixture = (): SchemaFixture => makeSchemaFixture("PostgreSQL", clientLayer)
