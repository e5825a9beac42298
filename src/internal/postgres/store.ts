/**
 * The PostgreSQL event store: the core over the PostgreSQL driver, and the
 * store's SQL services built together over one `SqlClient` with one migration
 * run (what `PostgresEventStore.layerAll` and `PgliteEventStore.layer` share).
 */
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { CheckpointStore } from "../../CheckpointStore.js"
import type { InvalidInput, StoreError } from "../../Errors.js"
import { EventStore } from "../../EventStore.js"
import type { Generations } from "../../Generations.js"
import * as PostgresCheckpointStore from "../../postgres/PostgresCheckpointStore.js"
import type { PostgresEventStoreOptions } from "../../postgres/PostgresEventStore.js"
import * as PostgresGenerations from "../../postgres/PostgresGenerations.js"
import * as PostgresSnapshotStore from "../../postgres/PostgresSnapshotStore.js"
import type { RunnerLock } from "../../RunnerLock.js"
import type { SnapshotStore } from "../../SnapshotStore.js"
import * as Core from "../core/eventStore.js"
import * as Validation from "../validation/index.js"
import * as PostgresDriver from "./driver.js"
import { migrate, migrateFirst } from "./migrator.js"
import { schemaOf } from "./schema.js"

/** The store on the `SqlClient` in context (see `PostgresEventStore.make`). */
export const make = (
  options?: PostgresEventStoreOptions
): Effect.Effect<EventStore, InvalidInput | StoreError | SqlError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const schema = yield* schemaOf(options)
    const maxEventBytes = yield* Validation.positiveInt(
      "maxEventBytes",
      options?.maxEventBytes,
      Validation.defaultLimits.maxEventBytes
    )
    const driver = yield* PostgresDriver.make(schema, options?.subscriptions, {
      groupCommit: options?.groupCommit !== false
    })
    return Core.make(driver, { limits: { maxEventBytes } })
  })

/** The store as a layer, migrating first unless `migrate: false` (see `PostgresEventStore.layer`). */
export const layer = (
  options?: PostgresEventStoreOptions
): Layer.Layer<EventStore, InvalidInput | StoreError | SqlError | Migrator.MigrationError, SqlClient.SqlClient> =>
  Layer.scoped(EventStore, migrateFirst(options, make(options)))

/** Every service of the store in one schema, and the runner lock given. */
export type Services = EventStore | CheckpointStore | SnapshotStore | Generations | RunnerLock

/**
 * The store's services on the `SqlClient` in context and in one schema, built
 * after one migration run (none with `migrate: false`), with `runnerLock`.
 */
export const layerServices = <E, R>(
  options: PostgresEventStoreOptions | undefined,
  runnerLock: Layer.Layer<RunnerLock, E, R>
): Layer.Layer<
  Services,
  E | InvalidInput | StoreError | SqlError | Migrator.MigrationError,
  R | SqlClient.SqlClient
> => {
  const schema = options?.schema
  const migration = options?.migrate === false
    ? Layer.empty
    : Layer.effectDiscard(Effect.flatMap(schemaOf(options), migrate))
  return Layer.mergeAll(
    layer({ ...options, migrate: false }),
    PostgresCheckpointStore.layer({ schema, migrate: false }),
    PostgresGenerations.layer({ schema }),
    PostgresSnapshotStore.layer({ schema, migrate: false }),
    runnerLock
  ).pipe(Layer.provide(migration))
}
