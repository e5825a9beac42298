/**
 * The event store in memory: no database, the same semantics as the
 * PostgreSQL backend (the same validation, idempotency, ordering and JSON
 * behaviour), for fast tests. Each `layer` build is a fresh, empty store.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { InvalidInput } from "../Errors.js"
import { EventStore } from "../EventStore.js"
import * as Core from "../internal/core/eventStore.js"
import * as MemoryDriver from "../internal/memory/driver.js"
import * as Validation from "../internal/validation/index.js"

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
