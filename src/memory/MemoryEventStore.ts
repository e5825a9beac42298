/**
 * The event store in memory: no database, the same semantics as the
 * PostgreSQL backend (the same validation, idempotency, ordering and JSON
 * behaviour), for fast tests. Each `layer` build is a fresh, empty store.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { CheckpointStore } from "../CheckpointStore.js"
import type { InvalidInput } from "../Errors.js"
import { EventStore } from "../EventStore.js"
import * as Core from "../internal/core/eventStore.js"
import * as MemoryDriver from "../internal/memory/driver.js"
import * as Validation from "../internal/validation/index.js"
import * as RunnerLock from "../RunnerLock.js"
import type { SnapshotStore } from "../SnapshotStore.js"
import * as MemoryCheckpointStore from "./MemoryCheckpointStore.js"
import * as MemorySnapshotStore from "./MemorySnapshotStore.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryEventStoreOptions {
  /** The largest `data` plus `metadata` of one event, in UTF-8 bytes (default 1 MiB). */
  readonly maxEventBytes?: number | undefined
}

/**
 * Builds an empty store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: MemoryEventStoreOptions): Effect.Effect<EventStore, InvalidInput> =>
  Effect.gen(function*() {
    const maxEventBytes = yield* Validation.positiveInt(
      "maxEventBytes",
      options?.maxEventBytes,
      Validation.defaultLimits.maxEventBytes
    )
    return Core.make(yield* MemoryDriver.make, { limits: { maxEventBytes } })
  })

/**
 * The store as a layer: every build is a fresh, empty store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: MemoryEventStoreOptions): Layer.Layer<EventStore, InvalidInput> =>
  Layer.effect(EventStore, make(options))

/**
 * Everything an application needs, in memory: the `EventStore`, the
 * `CheckpointStore`, the `SnapshotStore` and a `RunnerLock` within this
 * process (nothing outside it can share the store). Every build is a fresh,
 * empty set. No read model `Generations`: projections with tables need a SQL
 * backend.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerAll = (
  options?: MemoryEventStoreOptions
): Layer.Layer<EventStore | CheckpointStore | SnapshotStore | RunnerLock.RunnerLock, InvalidInput> =>
  Layer.mergeAll(layer(options), MemoryCheckpointStore.layer, MemorySnapshotStore.layer(), RunnerLock.layerLocal)
