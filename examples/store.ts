/**
 * The store an example runs on, chosen by configuration: the PostgreSQL
 * server at `DATABASE_URL` when it is set (every service of the store, from
 * `PostgresEventStore.layerAllConfig`), otherwise embedded PostgreSQL (PGlite)
 * in `EVENT_STORE_DATA_DIR`, by default the example's own data directory, or
 * in memory when it has none. Either way the store lives in the schema
 * `EVENT_STORE_SCHEMA`, by default one named after the example, so that the
 * examples keep apart on one server as they do in their own data directories.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Config, Console, Effect, Layer, Option } from "effect"
import type { CheckpointStore, EventStore, Generations, RunnerLock, SnapshotStore } from "effect-event-store"
import { PgliteEventStore } from "effect-event-store/pglite"
import { PostgresEventStore } from "effect-event-store/postgres"

/** What both stores provide. */
export type Store =
  | EventStore.EventStore
  | CheckpointStore.CheckpointStore
  | SnapshotStore.SnapshotStore
  | Generations.Generations
  | RunnerLock.RunnerLock
  | SqlClient.SqlClient

/** The schema of an example's store, where it keeps its read models too. */
export const storeSchema = (example: string): Config.Config<string> =>
  Config.string("EVENT_STORE_SCHEMA").pipe(Config.withDefault(example.replaceAll("-", "_")))

/** The store of `example`; on PGlite in `.data/<example>`, or in memory with `inMemory`. */
export const StoreLive = (example: string, options?: { readonly inMemory?: boolean }) =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const schema = yield* storeSchema(example)
    const server = yield* Config.string("DATABASE_URL").pipe(Config.withDefault(""))
    if (server !== "") {
      yield* Console.log(`Store: the PostgreSQL server at DATABASE_URL, schema ${schema}`)
      return PostgresEventStore.layerAllConfig({ url: Config.redacted("DATABASE_URL"), schema: Config.succeed(schema) })
    }
    const dataDir = yield* Config.option(Config.string("EVENT_STORE_DATA_DIR")).pipe(
      Config.map(Option.orElse(() => options?.inMemory === true ? Option.none() : Option.some(`.data/${example}`)))
    )
    yield* Console.log(
      `Store: embedded PostgreSQL (PGlite) ${
        Option.match(dataDir, {
          onNone: () => "in memory",
          onSome: (dir) => `in ${dir}`
        })
      }, schema ${schema}`
    )
    return PgliteEventStore.layer({ dataDir: Option.getOrUndefined(dataDir), schema })
  }))
