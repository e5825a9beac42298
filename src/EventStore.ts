/**
 * The event store service: append-only streams with optimistic concurrency and
 * one global ordered log.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import type * as Stream from "effect/Stream"
import type {
  ConcurrencyError,
  DuplicateEventId,
  InvalidInput,
  MetadataConcurrencyError,
  StoreError,
  StreamDeleted,
  StreamNotFound
} from "./Errors.js"
import type { EventData } from "./EventData.js"
import type { ExpectedVersion } from "./ExpectedVersion.js"
import type { RecordedEvent, StreamInfo } from "./RecordedEvent.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface AppendOptions {
  /** Default `"any"`. */
  readonly expectedVersion?: ExpectedVersion | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AppendResult {
  /** The stream's version after the append: the expected version for the next one. */
  readonly streamVersion: number
  /** The global positions of the appended events, in the order given. */
  readonly positions: ReadonlyArray<bigint>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ReadStreamOptions {
  /** `"forward"` (default) from version 1 up, or `"backward"` from the last event down. */
  readonly direction?: "forward" | "backward" | undefined
  /** The first stream version to return (inclusive). Default: the first event forward, the last backward. */
  readonly from?: number | undefined
  /** Return at most this many events. */
  readonly limit?: number | undefined
  /** Events fetched per round trip (default 500, at most 10,000). */
  readonly batchSize?: number | undefined
}

/**
 * A stream as `readStream` shows it at one moment: its version, where the
 * events it returns start, and those events. What state folded from a
 * stream's events needs to know whether it is still current (see
 * docs/snapshots.md): state that folded the events from `firstVersion` up to
 * some version at this `epoch` is current as long as both are unchanged.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamView {
  /**
   * The stream's version, as expected versions see it: hidden events count,
   * and it is 0 when the stream has no events (never written, or soft-deleted).
   */
  readonly version: number
  /**
   * The version of the first event `events` returns; when it returns none
   * (the stream has no events, is soft-deleted, or its metadata hides them
   * all), the version the next appended event will get.
   */
  readonly firstVersion: number
  /**
   * Changes whenever the stream's stored events are rewritten in place (an
   * erasure), so that state folded from them before is known to be out of date.
   */
  readonly epoch: number
  /**
   * The events `readStream` returns, as of this view: up to `version`, with
   * the stream's metadata (and, for `maxAge`, the clock) of the moment the
   * view was taken. None when `version` is 0.
   */
  readonly events: (options?: ReadStreamOptions) => Stream.Stream<RecordedEvent, InvalidInput | StoreError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EventFilter {
  /** Only events of these types. */
  readonly eventTypes?: ReadonlyArray<string> | undefined
  /** Only events of streams in these categories (`Order` for `Order-123`). */
  readonly categories?: ReadonlyArray<string> | undefined
  /** Only events of these streams. */
  readonly streamIds?: ReadonlyArray<string> | undefined
  /**
   * Only events whose type starts with one of these prefixes (`"Order"` matches
   * `OrderPlaced` and `OrderShipped`). Compared character for character: no
   * wildcards, `%` and `_` are plain characters.
   *
   * @since 0.2.0
   */
  readonly eventTypePrefixes?: ReadonlyArray<string> | undefined
  /**
   * Only events of streams whose id starts with one of these prefixes
   * (`"Order-2026"` matches `Order-2026-11-01`); no wildcards.
   *
   * @since 0.2.0
   */
  readonly streamIdPrefixes?: ReadonlyArray<string> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ReadAllOptions {
  /**
   * `"forward"` (default): oldest first. `"backward"`: newest first, from the
   * last settled event down (the tail of the log), never above the settled
   * horizon, so no older event can appear later below what was returned.
   *
   * @since 0.2.0
   */
  readonly direction?: "forward" | "backward" | undefined
  /**
   * The first global position to return (inclusive). Forward: default the start;
   * to resume after a checkpoint `c`, pass `c + 1n`. Backward: default the last
   * settled event; the events at `from` and below, newest first.
   */
  readonly from?: bigint | undefined
  /** Return at most this many events. */
  readonly limit?: number | undefined
  /** Events fetched per round trip (default 500, at most 10,000). */
  readonly batchSize?: number | undefined
  readonly filter?: EventFilter | undefined
  /** Also the events of archived streams, in their places (default false: the hot log only). */
  readonly includeArchived?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions {
  /**
   * The first global position to deliver (inclusive, default the start of the
   * log), or `"end"` for only what is appended after the subscription starts
   * (after its first successful read, if the database cannot be reached at first).
   * To resume after a checkpoint `c`, pass `c + 1n`.
   */
  readonly from?: bigint | "end" | undefined
  /** Events fetched per round trip while catching up (default 500, at most 10,000). */
  readonly batchSize?: number | undefined
  readonly filter?: EventFilter | undefined
  /** Also the events of archived streams, in their places (default false: the hot log only). */
  readonly includeArchived?: boolean | undefined
  /**
   * When a read fails (a lost connection, a server restart, a failover), the
   * subscription retries it on this schedule, from the position it has
   * reached: nothing is skipped or delivered twice. The schedule starts afresh
   * after every successful read; once it stops, the stream fails with the
   * `StoreError`. Each retry is logged as a warning. Only failures of the
   * database are retried; a refusal that would only come again (reading under
   * REPEATABLE READ) ends the stream at once.
   *
   * Default: retry forever, backing off exponentially from 100 ms to at most
   * 5 seconds (with jitter). `Schedule.stop` ends the stream at the first
   * failure; `Schedule.recurs(5)` after six failed reads in a row.
   */
  readonly retry?: Schedule.Schedule<unknown, StoreError> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ListStreamsOptions {
  /** Only streams of this category. */
  readonly category?: string | undefined
  /** Start after this stream id (stream ids are listed in code point order). */
  readonly after?: string | undefined
  readonly limit?: number | undefined
  readonly batchSize?: number | undefined
}

/**
 * A stream's metadata: the store's own settings, which `readStream` honours,
 * and the caller's keys. See docs/lifecycle.md.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamMetadata {
  /**
   * How many times the metadata was written (0: never), including the writes
   * a soft delete makes. The `expectedMetadataVersion` of the next write.
   */
  readonly metadataVersion: number
  /** `readStream` returns only the newest `maxCount` events. */
  readonly maxCount?: number | undefined
  /** `readStream` returns only events recorded at most `maxAge` ago (by the database's clock). */
  readonly maxAge?: Duration.Duration | undefined
  /** `readStream` returns only events from this version on. A soft delete sets it to the last version + 1. */
  readonly truncateBefore?: number | undefined
  /** The caller's own keys, as JSON (`{}` when none). */
  readonly custom: { readonly [key: string]: unknown }
  /** The stream's category (`Order` for `Order-123`). */
  readonly category: string
  /** When the stream got its first event (again, after a soft delete); absent while it has none. */
  readonly createdAt?: Date | undefined
}

/**
 * What `subscribeWithCheckpoints` delivers: an event, or a checkpoint. A
 * `Checkpoint` at `position` means that every event at or below `position`
 * that passes the filter has been delivered before it: resume with
 * `from: position + 1n` and nothing is missed.
 *
 * @since 0.2.0
 * @category models
 */
export type SubscriptionItem =
  | { readonly _tag: "Event"; readonly event: RecordedEvent }
  | { readonly _tag: "Checkpoint"; readonly position: bigint }

/**
 * A `maxAge` with its unit: a `Duration`, a string such as `"2 seconds"`, or a
 * `[seconds, nanos]` pair. Effect's `DurationInput` without its bare numbers.
 *
 * @since 0.2.0
 * @category models
 */
export type MaxAgeInput = Exclude<Duration.DurationInput, number | bigint>

/**
 * What `setStreamMetadata` writes. It replaces the stream's metadata as a
 * whole: a setting left out is removed.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamMetadataInput {
  /** A positive integer. */
  readonly maxCount?: number | undefined
  /**
   * A positive duration in whole milliseconds, written with its unit:
   * `"2 seconds"`, `"30 days"`, `Duration.hours(6)`. A bare number is refused
   * (`InvalidInput`): it would be milliseconds to Effect and seconds to
   * KurrentDB's `$maxAge`, and the wrong guess hides a stream's events.
   */
  readonly maxAge?: MaxAgeInput | undefined
  /** A non-negative integer: events at lower versions are hidden. */
  readonly truncateBefore?: number | undefined
  /** A JSON object of your own keys. */
  readonly custom?: { readonly [key: string]: unknown } | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SetStreamMetadataOptions {
  /** `"any"` (default), or the `metadataVersion` last read (0: never written). */
  readonly expectedMetadataVersion?: "any" | number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SetStreamMetadataResult {
  /** The metadata version just written: the expected metadata version for the next write. */
  readonly metadataVersion: number
}

/**
 * The optimistic check of a soft delete, tombstone or archive, with the
 * meaning it has for appends.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamLifecycleOptions {
  /** Default `"any"`. */
  readonly expectedVersion?: ExpectedVersion | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ArchiveResult {
  /** How many events moved from the hot log into the archive. */
  readonly archived: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EraseResult {
  /** How many events were erased now (events erased before are not counted). */
  readonly erased: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ScavengeOptions {
  /** Events removed per transaction (default 1,000, at most 10,000). */
  readonly batchSize?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ScavengeResult {
  /** How many events were removed, from the hot log and from the archive. */
  readonly removed: number
  /** From how many streams. */
  readonly streams: number
}

/**
 * @since 0.1.0
 * @category models
 */
export type AppendError = ConcurrencyError | DuplicateEventId | StreamDeleted | InvalidInput | StoreError

/**
 * @since 0.1.0
 * @category models
 */
export type StreamLifecycleError = ConcurrencyError | StreamDeleted | InvalidInput | StoreError

/**
 * The event store. Every backend provides the same semantics; the conformance
 * suite in `test/` holds them to it.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventStore {
  /**
   * Appends events to a stream, all or nothing. Fails with `ConcurrencyError`
   * when the stream is not at `expectedVersion`, storing nothing.
   */
  readonly append: (
    streamId: string,
    events: ReadonlyArray<EventData>,
    options?: AppendOptions
  ) => Effect.Effect<AppendResult, AppendError>
  /**
   * The events of one stream, paged so that any length reads in constant
   * memory, as its metadata lets them be seen (`truncateBefore`, `maxCount`,
   * `maxAge`), archived ones included. Fails with `StreamNotFound` when the
   * stream has no events or is soft-deleted, `StreamDeleted` when tombstoned.
   */
  readonly readStream: (
    streamId: string,
    options?: ReadStreamOptions
  ) => Stream.Stream<RecordedEvent, StreamNotFound | StreamDeleted | InvalidInput | StoreError>
  /**
   * The stream's version, where the events `readStream` returns start, its
   * epoch, and a reader of those events, in one look at the stream (one round
   * trip on SQL, before the events are read). Unlike `readStream` it does not
   * fail for a stream that has no events: its version is 0 then. Fails with
   * `StreamDeleted` when tombstoned.
   */
  readonly viewStream: (streamId: string) => Effect.Effect<StreamView, StreamDeleted | InvalidInput | StoreError>
  /**
   * The global log in position order: every event committed before the read
   * started, each once, in the same order for every reader. Ends there; a live
   * subscription is the way to keep following.
   */
  readonly readAll: (options?: ReadAllOptions) => Stream.Stream<RecordedEvent, InvalidInput | StoreError>
  /**
   * The global log from a position, caught up and then live: it never ends on
   * its own. Every event is delivered once, in the order of `readAll`; there
   * is no seam between catching up and following, because both are the same
   * reads up to the settled horizon. A failed read (a lost connection, a
   * server restart) is retried from where the subscription stands, on the
   * `retry` schedule (by default forever); the stream fails with the
   * `StoreError` only once that schedule gives up.
   */
  readonly subscribe: (options?: SubscribeOptions) => Stream.Stream<RecordedEvent, InvalidInput | StoreError>
  /**
   * `subscribe`, with progress: the same events in the same order, each as an
   * `Event` item, and `Checkpoint` items that say how far the subscription has
   * looked. A filtered subscription over a log where nothing matches learns no
   * position from events; the checkpoints give it one to save, so that it
   * resumes near the head (as KurrentDB's `checkpointReached`). At most one
   * checkpoint per read, only when it reaches past the last event delivered.
   *
   * @since 0.2.0
   */
  readonly subscribeWithCheckpoints: (
    options?: SubscribeOptions
  ) => Stream.Stream<SubscriptionItem, InvalidInput | StoreError>
  /**
   * The position of the last event every reader can see now (0 for an empty
   * log): what `readAll` would read up to if it started now.
   */
  readonly headPosition: Effect.Effect<bigint, StoreError>
  /** The stream's current version, or none when it has no events (or is deleted or tombstoned). */
  readonly streamVersion: (streamId: string) => Effect.Effect<Option.Option<number>, InvalidInput | StoreError>
  /** The streams that have events (not deleted, not tombstoned), in stream id order, paged. */
  readonly listStreams: (options?: ListStreamsOptions) => Stream.Stream<StreamInfo, InvalidInput | StoreError>
  /**
   * The stream's metadata; for a stream whose metadata was never written,
   * metadata version 0 and no settings. Fails with `StreamDeleted` when tombstoned.
   */
  readonly getStreamMetadata: (
    streamId: string
  ) => Effect.Effect<StreamMetadata, StreamDeleted | InvalidInput | StoreError>
  /**
   * Replaces the stream's metadata, checked against `expectedMetadataVersion`
   * (`MetadataConcurrencyError` on a mismatch). Allowed on a stream with no
   * events: it does not create the stream.
   */
  readonly setStreamMetadata: (
    streamId: string,
    metadata: StreamMetadataInput,
    options?: SetStreamMetadataOptions
  ) => Effect.Effect<SetStreamMetadataResult, MetadataConcurrencyError | StreamDeleted | InvalidInput | StoreError>
  /**
   * Soft delete: the stream reads as not found and behaves as one that does
   * not exist, until an append recreates it; versions then continue after the
   * last one, and only the new events are read. Its metadata stays, with
   * `truncateBefore` at the last version + 1. Deleting a stream that does not
   * exist is allowed when `expectedVersion` allows it (`"any"`, `"no_stream"`).
   */
  readonly deleteStream: (
    streamId: string,
    options?: StreamLifecycleOptions
  ) => Effect.Effect<void, StreamLifecycleError>
  /**
   * Hard delete: the stream can never be read, written, recreated or given
   * metadata again (`StreamDeleted`). Also allowed on a stream that does not
   * exist, which then can never be created.
   */
  readonly tombstoneStream: (
    streamId: string,
    options?: StreamLifecycleOptions
  ) => Effect.Effect<void, StreamLifecycleError>
  /**
   * Moves the stream's events out of the hot log into the archive, in one
   * transaction and at the same positions. `readStream` still reads them;
   * `readAll` and `subscribe` only with `includeArchived`. Later appends go to
   * the hot log as usual.
   */
  readonly archiveStream: (
    streamId: string,
    options?: StreamLifecycleOptions
  ) => Effect.Effect<ArchiveResult, StreamLifecycleError>
  /**
   * Erases the personal data of every stored event of the stream, in place
   * (hot or archived, also of deleted and tombstoned streams): `data` becomes
   * `null`, `metadata` keeps only `correlationId` and `causationId`, and
   * `erasedAt` is set. Ids, types, versions and positions stay.
   */
  readonly eraseStream: (streamId: string) => Effect.Effect<EraseResult, InvalidInput | StoreError>
  /**
   * Physically removes what the streams' metadata hides from `readStream`
   * (below `truncateBefore`, beyond `maxCount`, older than `maxAge`) and every
   * event of tombstoned streams, from the hot log and the archive, in
   * batches. Until then `readAll` still returns those events.
   */
  readonly scavenge: (options?: ScavengeOptions) => Effect.Effect<ScavengeResult, InvalidInput | StoreError>
}

/**
 * The tag of the `EventStore` service: `yield* EventStore` in an effect, and
 * a backend's layer to provide it.
 *
 * @since 0.1.0
 * @category tags
 */
export const EventStore: Context.Tag<EventStore, EventStore> = Context.GenericTag<EventStore>(
  "effect-event-store/EventStore"
)
