/**
 * An `@effect/sql` client for embedded PostgreSQL ([PGlite](https://pglite.dev)):
 * the `"pg"` dialect and the statement compiler of `@effect/sql-pg`, so SQL reads
 * and compiles exactly as against a PostgreSQL server, running in-process, in
 * memory or persisted to a directory.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Client from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import { PGlite } from "@electric-sql/pglite"
import type { QueryOptions, Results } from "@electric-sql/pglite"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as fs from "node:fs/promises"

const ATTR_DB_SYSTEM_NAME = "db.system.name"

const INT8_OID = 20

/**
 * A `SqlClient` backed by one embedded PGlite database.
 *
 * PGlite is a single session, so the client hands it out one unit of work at a
 * time: a statement outside a transaction holds it for that statement, a
 * transaction (or `reserve`) for its whole scope. Values come back as
 * node-postgres returns them: `int8` and `numeric` as strings, `json` / `jsonb`
 * parsed, `timestamptz` as `Date`.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgliteClient extends Client.SqlClient {
  /**
   * The underlying database. Statements sent to it directly do not wait for
   * the client's transactions.
   */
  readonly pglite: PGlite
  /**
   * The payloads sent to `channel` (`NOTIFY` / `pg_notify`), from the moment
   * the stream starts listening until it ends. A notification sent inside a
   * transaction arrives after the commit, and never if it rolls back.
   *
   * Starting to listen waits for the database like a statement does, so do not
   * start the stream from inside a transaction on the same fiber.
   */
  readonly listen: (channel: string) => Stream.Stream<string, SqlError>
}

/**
 * The client as itself, with `pglite` and `listen`; the layers provide it
 * under `SqlClient` as well.
 *
 * @since 0.1.0
 * @category tags
 */
export const PgliteClient: Context.Tag<PgliteClient, PgliteClient> = Context.GenericTag<PgliteClient>(
  "effect-event-store/PgliteClient"
)

/**
 * Options of `make` and the layers; the transforms are those of `PgClient`.
 *
 * @since 0.1.0
 * @category models
 */
export interface PgliteClientConfig {
  /** Where the database lives on disk; in memory when absent. */
  readonly dataDir?: string | undefined
  readonly spanAttributes?: Record<string, unknown> | undefined

  readonly transformResultNames?: ((str: string) => string) | undefined
  readonly transformQueryNames?: ((str: string) => string) | undefined
  readonly transformJson?: boolean | undefined
}

/**
 * Opens the database (created on first use) and closes it when the scope
 * closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  config?: PgliteClientConfig
) => Effect.Effect<PgliteClient, SqlError, Scope.Scope | Reactivity.Reactivity> = Effect.fnUntraced(function*(
  config: PgliteClientConfig = {}
): Effect.fn.Return<PgliteClient, SqlError, Scope.Scope | Reactivity.Reactivity> {
  const pglite: PGlite = yield* Effect.acquireRelease(
    Effect.tryPromise({
      // PGlite's default turns int8 into a JS number, which silently loses
      // precision past 2^53; node-postgres leaves it a string, and so do we.
      try: async () => {
        // A data directory whose parents do not exist yet is created, as `initdb` would.
        if (config.dataDir !== undefined && !config.dataDir.includes("://")) {
          await fs.mkdir(config.dataDir, { recursive: true })
        }
        return PGlite.create(config.dataDir, { parsers: { [INT8_OID]: identity<string> } })
      },
      catch: (cause) => new SqlError({ cause, message: "PgliteClient: Failed to open the database" })
    }),
    (pglite) => pglite.closed ? Effect.void : Effect.promise(() => pglite.close())
  )

  // One permit for the one session, so that a statement from another fiber can
  // never run inside someone else's open transaction. The permit is taken
  // through Effect, so an interrupted statement gives it back; PGlite still runs
  // an abandoned statement to completion, but in order, before anything that
  // comes after it.
  const semaphore = yield* Effect.makeSemaphore(1)
  const withPermit = semaphore.withPermits(1)

  const run = <A>(
    sql: string,
    params: ReadonlyArray<unknown>,
    options?: QueryOptions
  ): Effect.Effect<ReadonlyArray<Results<A>>, SqlError> =>
    Effect.ensuring(statement<A>(sql, params, options), yieldToEventLoop)

  const statement = <A>(
    sql: string,
    params: ReadonlyArray<unknown>,
    options?: QueryOptions
  ): Effect.Effect<ReadonlyArray<Results<A>>, SqlError> =>
    Effect.tryPromise({
      // As node-postgres does, a statement without parameters goes over the
      // simple query protocol and may hold several statements (a migration
      // file); one with parameters is prepared. `exec` is not generic in its
      // row type; `rowMode` decides it.
      try: () =>
        params.length === 0
          ? pglite.exec(sql, options) as Promise<Array<Results<A>>>
          : pglite.query<A>(sql, params as Array<unknown>, options).then((result) => [result]),
      catch: (cause) => new SqlError({ cause, message: "Failed to execute statement" })
    })

  const makeConnection = (
    guard: <A>(effect: Effect.Effect<A, SqlError>) => Effect.Effect<A, SqlError>
  ): Connection => {
    const execute: Connection["execute"] = (sql, params, transformRows) =>
      guard(Effect.map(
        run<Record<string, unknown>>(sql, params),
        (results) => rowsOf(results.map((result) => transformRows ? transformRows(result.rows) : result.rows))
      ))
    return {
      execute,
      executeRaw: (sql, params) =>
        guard(Effect.map(run(sql, params), (results) => {
          const [only, ...more] = results
          return only !== undefined && more.length === 0 ? only : results
        })),
      executeValues: (sql, params) =>
        guard(Effect.map(
          run<ReadonlyArray<unknown>>(sql, params, { rowMode: "array" }),
          (results) => rowsOf(results.map((result) => result.rows))
        )),
      executeUnprepared: execute,
      // PGlite is in-process: the rows are all fetched while the session is held,
      // then emitted, so a consumer can run statements of its own meanwhile.
      executeStream: (sql, params, transformRows) => Stream.fromIterableEffect(execute(sql, params, transformRows))
    }
  }

  // Statements inside a transaction find its connection in their context and
  // must not ask for the permit the transaction already holds.
  const transactionConnection = makeConnection(identity)
  const transactionAcquirer = Effect.uninterruptibleMask((restore) =>
    restore(semaphore.take(1)).pipe(
      Effect.zipRight(Effect.addFinalizer(() => semaphore.release(1))),
      Effect.as(transactionConnection)
    )
  )

  const client = yield* Client.make({
    acquirer: Effect.succeed(makeConnection(withPermit)),
    transactionAcquirer,
    compiler: PgClient.makeCompiler(config.transformQueryNames, config.transformJson),
    spanAttributes: [
      ...(config.spanAttributes ? Object.entries(config.spanAttributes) : []),
      [ATTR_DB_SYSTEM_NAME, "postgresql"]
    ],
    transformRows: config.transformResultNames
      ? Statement.defaultTransforms(config.transformResultNames, config.transformJson).array
      : undefined
  })

  const listen = (channel: string): Stream.Stream<string, SqlError> =>
    Stream.asyncPush<string, SqlError>((emit) => {
      // PGlite writes the channel into LISTEN as given and keys its callbacks by
      // the name without quotes: quoting keeps the name's case (as PgClient does)
      // but a double quote inside the name could never be matched back.
      if (channel.includes("\"")) {
        return Effect.fail(
          new SqlError({
            cause: new Error(`Invalid channel name: ${channel}`),
            message: "Failed to listen: channel names cannot contain a double quote"
          })
        )
      }
      const quoted = `"${channel}"`
      const onPayload = (payload: string) => {
        emit.single(payload)
      }
      return Effect.acquireRelease(
        withPermit(Effect.tryPromise({
          try: () => pglite.listen(quoted, onPayload),
          catch: (cause) => new SqlError({ cause, message: "Failed to listen" })
        })),
        // PGlite runs UNLISTEN only once the channel's last callback is gone.
        // Best effort: it fails only once the database is closed, when there
        // is nothing left to stop.
        () => withPermit(Effect.ignore(Effect.tryPromise(() => pglite.unlisten(quoted, onPayload))))
      )
    })

  return Object.assign(client, { pglite, listen })
})

/**
 * PGlite runs a statement synchronously and answers on the microtask queue, so
 * a run of statements (a catch-up, a migration, a test suite) would keep Node's
 * event loop from every timer and I/O callback until it ends: an HTTP server in
 * the same process, timeouts, the subscription poller. One turn of the loop
 * after each statement (`setImmediate`, a few microseconds) keeps them going.
 */
const yieldToEventLoop: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * node-postgres answers a statement with its rows, and several statements sent
 * together with one row list per statement.
 */
const rowsOf = <R>(
  rowSets: ReadonlyArray<ReadonlyArray<R>>
): ReadonlyArray<R> | ReadonlyArray<ReadonlyArray<R>> => {
  const [only, ...more] = rowSets
  return only !== undefined && more.length === 0 ? only : rowSets
}

const toContext = (client: PgliteClient) =>
  Context.make(PgliteClient, client).pipe(
    Context.add(Client.SqlClient, client)
  )

/**
 * Provides `PgliteClient` and `SqlClient`; the database closes with the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  config: PgliteClientConfig = {}
): Layer.Layer<PgliteClient | Client.SqlClient, SqlError> =>
  Layer.scopedContext(Effect.map(make(config), toContext)).pipe(
    Layer.provide(Reactivity.layer)
  )

/**
 * `layer`, with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<PgliteClientConfig>
): Layer.Layer<PgliteClient | Client.SqlClient, ConfigError.ConfigError | SqlError> =>
  Layer.scopedContext(
    Config.unwrap(config).pipe(
      Effect.flatMap(make),
      Effect.map(toContext)
    )
  ).pipe(Layer.provide(Reactivity.layer))
