/**
 * The three backends for the tests of typed events, snapshots and aggregates:
 * the event store and the snapshot store together, built once per test file
 * (PGlite takes a second or two to start) — tests keep apart by stream ids.
 * The PostgreSQL server runs when reachable (skipped otherwise, unless CI is
 * set), in a schema of its own that is dropped at the end.
 */
import { Effect, FastCheck, Layer, Runtime } from "effect"
import type { EventStore } from "../../src/EventStore.js"
import { MemoryEventStore, MemorySnapshotStore } from "../../src/memory/index.js"
import { PgliteEventStore } from "../../src/pglite/index.js"
import { PostgresSnapshotStore } from "../../src/postgres/index.js"
import type { SnapshotStore } from "../../src/SnapshotStore.js"
import { serverAvailable, storeLayer, uniqueSchema } from "../postgres/support.js"

export interface Backend {
  readonly name: string
  readonly available: boolean
  readonly layer: Layer.Layer<EventStore | SnapshotStore, unknown>
  /** The PostgreSQL schema of the SQL backends (whose layers also provide the `SqlClient`). */
  readonly schema?: string
}

export const backends = (prefix: string, schema = uniqueSchema(prefix)): ReadonlyArray<Backend> => [
  {
    name: "memory",
    available: true,
    layer: Layer.merge(MemoryEventStore.layer(), MemorySnapshotStore.layer())
  },
  {
    name: "PGlite",
    available: true,
    schema: prefix,
    layer: PgliteEventStore.layer({ schema: prefix })
  },
  {
    name: "PostgreSQL",
    available: serverAvailable,
    schema,
    layer: PostgresSnapshotStore.layer({ schema }).pipe(Layer.provideMerge(storeLayer(schema)))
  }
]

let streams = 0

/** A stream id no other test of the run uses. */
export const uniqueStream = (category: string) =>
  `${category}-${(++streams).toString(36)}${Math.random().toString(36).slice(2, 8)}`

/** Checks an effectful property with fast-check, on the current runtime. */
export const checkProperty = <A, R>(
  arbitrary: FastCheck.Arbitrary<A>,
  property: (value: A) => Effect.Effect<void, unknown, R>,
  parameters?: FastCheck.Parameters<[A]>
): Effect.Effect<void, never, R> =>
  Effect.flatMap(Effect.runtime<R>(), (runtime) =>
    Effect.promise(() =>
      FastCheck.assert(
        FastCheck.asyncProperty(arbitrary, (value) => Runtime.runPromise(runtime)(property(value))),
        parameters
      )
    ))

/** A category no other test of the run uses (no `-` in it). */
export const uniqueCategory = (name: string) =>
  `${name}${(++streams).toString(36)}${Math.random().toString(36).slice(2, 8)}`
