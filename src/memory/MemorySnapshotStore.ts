/**
 * The snapshot store in memory, with the rules of the PostgreSQL backend: the
 * same checks, one snapshot per stream, the same replacement rule. States are
 * held as JSON text and parsed afresh on every load.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import { type PreparedSnapshot, prepareSnapshot, replaces } from "../internal/snapshot.js"
import * as Validation from "../internal/validation/index.js"
import { SnapshotStore, type SnapshotToSave } from "../SnapshotStore.js"

interface Stored extends PreparedSnapshot {
  readonly savedAt: number
}

/**
 * Builds an empty snapshot store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<SnapshotStore> = Effect.gen(function*() {
  const ref = yield* Ref.make(HashMap.empty<string, Stored>())

  const save = (streamId: string, snapshot: SnapshotToSave) =>
    Effect.gen(function*() {
      const prepared = yield* prepareSnapshot(streamId, snapshot)
      const savedAt = yield* Clock.currentTimeMillis
      yield* Ref.update(ref, (snapshots) => {
        const stored = HashMap.get(snapshots, streamId)
        return Option.isSome(stored) && !replaces(prepared, stored.value)
          ? snapshots
          : HashMap.set(snapshots, streamId, { ...prepared, savedAt })
      })
    }).pipe(Effect.withSpan("SnapshotStore.save", { attributes: { streamId } }))

  const load = (streamId: string) =>
    Effect.gen(function*() {
      yield* Validation.streamId(streamId)
      return Option.map(HashMap.get(yield* Ref.get(ref), streamId), (stored) => ({
        streamId,
        version: stored.version,
        firstVersion: stored.firstVersion,
        epoch: stored.epoch,
        schemaVersion: stored.schemaVersion,
        state: JSON.parse(stored.state) as unknown,
        savedAt: new Date(stored.savedAt)
      }))
    }).pipe(Effect.withSpan("SnapshotStore.load", { attributes: { streamId } }))

  const remove = (streamId: string) =>
    Effect.gen(function*() {
      yield* Validation.streamId(streamId)
      yield* Ref.update(ref, HashMap.remove(streamId))
    }).pipe(Effect.withSpan("SnapshotStore.delete", { attributes: { streamId } }))

  return SnapshotStore.of({ save, load, delete: remove })
})

/**
 * The snapshot store as a layer: every build is a fresh, empty store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (): Layer.Layer<SnapshotStore> => Layer.effect(SnapshotStore, make)
