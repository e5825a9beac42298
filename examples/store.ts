/**
 * The store the examples run on, chosen by configuration: the PostgreSQL
 * server at `DATABASE_URL` when it is set (every service of the store, from
 * `PostgresEventStore.layerAllConfig`: also `EVENT_STORE_SCHEMA`,
 * `DATABASE_MAX_CONNECTIONS`), otherwise embedded PostgreSQL (PGlite) in
 * `EVENT_STORE_DATA_DIR`, by default the example's own data directory, or in
 * memory when it has none. Both keep the store in `EVENT_STORE_SCHEMA`.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Config, Console, Effect, Layer, Option } from "effect"
import type { CheckpointStore, EventStore, Generations, RunnerLock, SnapshotStore } from "effect-event-store"
import { PgliteEventStore } from "effect-event-store/pglite"
import { PostgresEventStore } from "effect-event-store/postgres"

/** The store's schema (`EVENT_STORE_SCHEMA`, default `event_store`), where the examples keep their read models too. */
export const storeSchema: Config.Config<string> = Config.string("EVENT_STORE_SCHEMA").pipe(Config.withDefault("event_store"))

/** What both stores provide. */
export type Store =
  | EventStore.EventStore
  | CheckpointStore.CheckpointStore
  | SnapshotStore.SnapshotStore
  | Generations.Generations
  | RunnerLock.RunnerLock
  | SqlClient.SqlClient

export const StoreLive = (defaultDataDir?: string) =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const server = yield* Config.string("DATABASE_URL").pipe(Config.withDefault(""))
    if (server !== "") {
      yield* Console.log("Store: the PostgreSQL server at DATABASE_URL")
      return PostgresEventStore.layerAllConfig()
    }
    const dataDir = Option.orElse(
      yield* Config.option(Config.string("EVENT_STORE_DATA_DIR")),
      () => Option.fromNullable(defaultDataDir)
    )
    yield* Console.log(`Store: embedded PostgreSQL (PGlite) ${Option.match(dataDir, { onNone: () => "in memory", onSome: (dir) => `in ${dir}` })}`)
    return PgliteEventStore.layer({ dataDir: Option.getOrUndefined(dataDir), schema: yield* storeSchema })
  }))
