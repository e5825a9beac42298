/**
 * The snapshot store: the latest saved state of each stream, so that loading
 * an aggregate reads the snapshot and only the events after it instead of the
 * whole stream. A snapshot is a cache: losing one, or ignoring one written by
 * other code, costs a longer replay and never changes a result. Each snapshot
 * says what it summarises (the events from `firstVersion` to `version`, at the
 * stream's `epoch`), so that a reader can tell whether the stream still shows
 * exactly those events (`isCurrent`): soft deletes, truncation, `maxCount` and
 * `maxAge` windows, scavenges and erasures never bring hidden history back.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Schema from "effect/Schema"
import { InvalidInput, type StoreError } from "./Errors.js"
import type { StreamView } from "./EventStore.js"

/**
 * What a snapshot summarises: the events `readStream` returned from
 * `firstVersion` up to `version`, at the stream's `epoch` (a `StreamView`'s
 * `firstVersion` and `epoch` when the state was loaded).
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotBasis {
  /** The stream version the state reflects, at least 1. */
  readonly version: number
  /**
   * The `firstVersion` of the stream's view the state was folded from (its
   * first event's version, or the next version when it folded none). 0 for
   * snapshots saved before the store recorded it: never current.
   */
  readonly firstVersion: number
  /** The `epoch` of the stream's view the state was folded from. */
  readonly epoch: number
}

/**
 * A stored snapshot: the state of stream `streamId` after its event at
 * `version`, as JSON, written with the state schema's `schemaVersion`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot extends SnapshotBasis {
  readonly streamId: string
  readonly schemaVersion: number
  readonly state: unknown
  readonly savedAt: Date
}

/**
 * What `save` takes.
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotToSave extends SnapshotBasis {
  /** The version of the state's schema: a load with another version ignores this snapshot. */
  readonly schemaVersion: number
  /** The encoded state: a JSON value. */
  readonly state: unknown
}

/**
 * One snapshot per stream. Every backend follows the same rule on `save`: the
 * new snapshot replaces the stored one, except that a snapshot of the same
 * schema version at a later epoch, or at the same epoch and a higher stream
 * version, is kept (a slow writer never replaces a newer state with an older
 * one). A snapshot of another schema version is always replaced.
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotStore {
  readonly save: (streamId: string, snapshot: SnapshotToSave) => Effect.Effect<void, InvalidInput | StoreError>
  /** The stream's snapshot, whatever its schema version, or none. */
  readonly load: (streamId: string) => Effect.Effect<Option.Option<Snapshot>, InvalidInput | StoreError>
  /**
   * Removes the stream's snapshot, if any. `eraseStream` does not touch
   * snapshots (a snapshot saved before an erasure is never used again, but its
   * state stays until the next save replaces it): delete it too when the state
   * may hold personal data.
   */
  readonly delete: (streamId: string) => Effect.Effect<void, InvalidInput | StoreError>
}

/**
 * The tag of the `SnapshotStore` service.
 *
 * @since 0.1.0
 * @category tags
 */
export const SnapshotStore: Context.Tag<SnapshotStore, SnapshotStore> = Context.GenericTag<SnapshotStore>(
  "effect-event-store/SnapshotStore"
)

/**
 * Whether a snapshot summarises exactly what the stream shows now, so that
 * the snapshot's state plus the events after its version equal the fold of
 * every event `readStream` returns: the stream still shows the events the
 * state folded (the same first version, the same epoch) and has reached the
 * snapshot's version.
 *
 * The stream's visible events are always one run of versions, from
 * `firstVersion` to its version (docs/snapshots.md says why), so the same
 * first version and epoch mean the same events up to the snapshot's version.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isCurrent = (
  snapshot: SnapshotBasis,
  view: Pick<StreamView, "version" | "firstVersion" | "epoch">
): boolean =>
  snapshot.version <= view.version && snapshot.firstVersion === view.firstVersion && snapshot.epoch === view.epoch

/**
 * @since 0.1.0
 * @category models
 */
export interface SnapshotSchema<S, I> {
  readonly schema: Schema.Schema<S, I, never>
  readonly schemaVersion: number
}

/**
 * A decoded snapshot.
 *
 * @since 0.1.0
 * @category models
 */
export interface LoadedSnapshot<S> extends SnapshotBasis {
  readonly state: S
  readonly schemaVersion: number
}

/**
 * Loads the stream's snapshot and decodes its state with `schema`. A snapshot
 * of another schema version is ignored (none), never mis-decoded; so is one of
 * this version that does not decode (logged as a warning: the schema changed
 * without a new schema version). The next save replaces either.
 *
 * @since 0.1.0
 * @category typed
 */
export const loadSnapshot = <S, I>(
  streamId: string,
  options: SnapshotSchema<S, I>
): Effect.Effect<Option.Option<LoadedSnapshot<S>>, InvalidInput | StoreError, SnapshotStore> =>
  Effect.gen(function*() {
    const snapshots = yield* SnapshotStore
    const stored = yield* snapshots.load(streamId)
    if (Option.isNone(stored) || stored.value.schemaVersion !== options.schemaVersion) return Option.none()
    const { epoch, firstVersion, schemaVersion, state, version } = stored.value
    return yield* ParseResult.decodeUnknown(options.schema)(state).pipe(
      Effect.map((decoded) => Option.some({ state: decoded, version, firstVersion, epoch, schemaVersion })),
      Effect.catchAll((issue) =>
        Effect.as(
          Effect.logWarning(
            `Ignoring the snapshot of "${streamId}" at version ${version}: its state does not decode with ` +
              `schema version ${schemaVersion}; was the state schema changed without a new schemaVersion?`,
            ParseResult.TreeFormatter.formatIssueSync(issue)
          ),
          Option.none()
        )
      )
    )
  }).pipe(Effect.withSpan("SnapshotStore.loadSnapshot", { attributes: { streamId } }))

/**
 * Encodes `state` with `schema` and saves it as the stream's snapshot at
 * `version`, folded from `firstVersion` at `epoch` (from the `StreamView` the
 * state was loaded with). A state that does not encode is an `InvalidInput`.
 *
 * @since 0.1.0
 * @category typed
 */
export const saveSnapshot = <S, I>(
  streamId: string,
  options: SnapshotSchema<S, I> & SnapshotBasis & { readonly state: S }
): Effect.Effect<void, InvalidInput | StoreError, SnapshotStore> =>
  Effect.gen(function*() {
    const snapshots = yield* SnapshotStore
    const state = yield* ParseResult.encode(options.schema)(options.state).pipe(
      Effect.mapError((issue) =>
        new InvalidInput({ field: "snapshot.state", reason: ParseResult.TreeFormatter.formatIssueSync(issue) })
      )
    )
    const { epoch, firstVersion, schemaVersion, version } = options
    yield* snapshots.save(streamId, { version, firstVersion, epoch, schemaVersion, state })
  }).pipe(Effect.withSpan("SnapshotStore.saveSnapshot", { attributes: { streamId } }))
