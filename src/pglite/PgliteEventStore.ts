/**
 * The event store on an embedded PostgreSQL (PGlite): the very same SQL and
 * migrations as on a server, in process, kept in a data directory or in memory.
 * The default on a fresh machine, where no server is needed.
 *
 * @since 0.1.0
 */
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Layer from "effect/Layer"
import type { CheckpointStore } from "../CheckpointStore.js"
import type { InvalidInput, StoreError } from "../Errors.js"
import type { EventStore } from "../EventStore.js"
import type { Generations } from "../Generations.js"
import { layerServices } from "../internal/postgres/store.js"
import type * as PostgresEventStore from "../postgres/PostgresEventStore.js"
import * as RunnerLock from "../RunnerLock.js"
import type { SnapshotStore } from "../SnapshotStore.js"
import * as PgliteClient from "./PgliteClient.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PgliteEventStoreOptions extends PostgresEventStore.PostgresEventStoreOptions {
  /** Where the database lives on disk; in memory when absent. */
  readonly dataDir?: string | undefined
}

/**
 * The store with its own embedded database: the `EventStore`, the
 * `CheckpointStore`, the `SnapshotStore`, read model `Generations` and a
 * `RunnerLock` within this process (no other process
 * can open the same data directory), all on one database, migrated once
 * before any service starts (the embedded counterpart of
 * `PostgresEventStore.layerAll`). The `SqlClient` is provided too, so that your own SQL (read models, `withTransaction`) runs on
 * the same database and joins the store's transactions; more services on it
 * compose with `Layer.provideMerge(PgliteEventStore.layer(...))`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: PgliteEventStoreOptions
): Layer.Layer<
  | EventStore
  | CheckpointStore
  | SnapshotStore
  | Generations
  | RunnerLock.RunnerLock
  | SqlClient.SqlClient
  | PgliteClient.PgliteClient,
  InvalidInput | StoreError | SqlError | Migrator.MigrationError
> => {
  const { dataDir, ...store } = options ?? {}
  return layerServices(store, RunnerLock.layerLocal).pipe(Layer.provideMerge(PgliteClient.layer({ dataDir })))
}
