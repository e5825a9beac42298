/**
 * The snapshot store: the latest saved state of each stream, so that loading
 * an aggregate reads the snapshot and only the events after it instead of the
 * whole stream. A snapshot is a cache: losing one, or ignoring one written by
 * other code, costs a longer replay and never changes a result.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import type * as Schema from "effect/Schema"
import { InvalidInput, type StoreError } from "./Errors.js"
import * as Validation from "./Validation.js"

/**
 * A stored snapshot: the state of stream `streamId` after its event at
 * `version`, as JSON, written with the state schema's `schemaVersion`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly streamId: string
  readonly version: number
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
export interface SnapshotToSave {
  /** The stream version the state reflects (its last event's version, at least 1). */
  readonly version: number
  /** The version of the state's schema: a load with another version ignores this snapshot. */
  readonly schemaVersion: number
  /** The encoded state: a JSON value. */
  readonly state: unknown
}

/**
 * One snapshot per stream. Every backend follows the same rule on `save`: the
 * new snapshot replaces the stored one, except that a snapshot of the same
 * schema version at a higher stream version is kept (a slow writer never
 * replaces a newer state with an older one). A snapshot of another schema
 * version is always replaced.
 *
 * @since 0.1.0
 * @category tags
 */
export class SnapshotStore extends Context.Tag("effect-event-store/SnapshotStore")<SnapshotStore, {
  readonly save: (streamId: string, snapshot: SnapshotToSave) => Effect.Effect<void, InvalidInput | StoreError>
  /** The stream's snapshot, whatever its schema version, or none. */
  readonly load: (streamId: string) => Effect.Effect<Option.Option<Snapshot>, InvalidInput | StoreError>
}>() {}

/**
 * A snapshot that passed the checks of `save`, its state serialised once.
 *
 * @since 0.1.0
 * @category models
 */
export interface PreparedSnapshot {
  readonly streamId: string
  readonly version: number
  readonly schemaVersion: number
  /** JSON text. */
  readonly state: string
}

const maxInt32 = 2_147_483_647

/**
 * Checks a snapshot as every backend does before storing it: the stream id
 * like an append's, positive versions, and a state that is JSON as `jsonb`
 * stores it (by the very rules events are held to).
 *
 * @since 0.1.0
 * @category validation
 */
export const prepareSnapshot = (
  streamId: string,
  snapshot: SnapshotToSave
): Effect.Effect<PreparedSnapshot, InvalidInput> =>
  Effect.gen(function*() {
    yield* Validation.streamId(streamId)
    if (!Number.isSafeInteger(snapshot.version) || snapshot.version < 1) {
      return yield* new InvalidInput({ field: "snapshot.version", reason: "must be a positive integer" })
    }
    if (!Number.isSafeInteger(snapshot.schemaVersion) || snapshot.schemaVersion < 1 || snapshot.schemaVersion > maxInt32) {
      return yield* new InvalidInput({ field: "snapshot.schemaVersion", reason: "must be a positive integer" })
    }
    // The state is held to exactly the rules of event data, by the same code.
    const state = yield* Validation.json("snapshot.state", snapshot.state)
    return { streamId, version: snapshot.version, schemaVersion: snapshot.schemaVersion, state }
  })

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
export interface LoadedSnapshot<S> {
  readonly state: S
  readonly version: number
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
    const { state, version, schemaVersion } = stored.value
    return yield* ParseResult.decodeUnknown(options.schema)(state).pipe(
      Effect.map((decoded) => Option.some({ state: decoded, version, schemaVersion })),
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
 * `version`. A state that does not encode is an `InvalidInput`.
 *
 * @since 0.1.0
 * @category typed
 */
export const saveSnapshot = <S, I>(
  streamId: string,
  options: SnapshotSchema<S, I> & { readonly version: number; readonly state: S }
): Effect.Effect<void, InvalidInput | StoreError, SnapshotStore> =>
  Effect.gen(function*() {
    const snapshots = yield* SnapshotStore
    const state = yield* ParseResult.encode(options.schema)(options.state).pipe(
      Effect.mapError((issue) =>
        new InvalidInput({ field: "snapshot.state", reason: ParseResult.TreeFormatter.formatIssueSync(issue) })
      )
    )
    yield* snapshots.save(streamId, { version: options.version, schemaVersion: options.schemaVersion, state })
  }).pipe(Effect.withSpan("SnapshotStore.saveSnapshot", { attributes: { streamId } }))

/**
 * Whether a save of `incoming` replaces the `stored` snapshot (the rule every
 * backend follows).
 *
 * @since 0.1.0
 * @category predicates
 */
export const replaces = (
  incoming: { readonly version: number; readonly schemaVersion: number },
  stored: { readonly version: number; readonly schemaVersion: number }
): boolean => incoming.schemaVersion !== stored.schemaVersion || incoming.version >= stored.version
