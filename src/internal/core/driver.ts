/**
 * The seam between the event store's core and a backend. The core
 * (`./eventStore.ts`) validates every input, plans reads, pages, runs the
 * subscription loop, checks expected versions, classifies rejected appends
 * and adds spans; a driver only stores and fetches already-prepared values.
 * Adding a backend means writing one of these.
 */
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { ConcurrencyError, DuplicateEventId, StoreError, StreamDeleted } from "../../Errors.js"
import type { RecordedEvent, StreamInfo } from "../../RecordedEvent.js"
import type { PreparedAppend, PreparedMetadata, ResolvedFilter } from "../validation/index.js"
import type { StoredMetadata } from "./streamMetadata.js"

/** An event already stored under one of an append's ids. */
export interface StoredEvent {
  readonly eventId: string
  readonly streamId: string
  readonly streamVersion: number
  readonly position: bigint
  /**
   * The stream had been soft-deleted at the version before this event, so the
   * append that stored it found no stream (version 0).
   */
  readonly recreated?: boolean | undefined
}

/** What the driver stored, or why it stored nothing. */
export type AppendAttempt =
  | { readonly _tag: "Appended"; readonly streamVersion: number; readonly positions: ReadonlyArray<bigint> }
  | {
    readonly _tag: "Rejected"
    /**
     * `"tombstoned"`: the stream is tombstoned; `"conflict"`: the expected
     * version did not hold and no id is stored; `"storedIds"`: some of the
     * ids are stored already (in `stored`).
     */
    readonly reason: "tombstoned" | "conflict" | "storedIds"
    /** The live version the append's own check saw. */
    readonly actual: number
    readonly stored: ReadonlyArray<StoredEvent>
  }

/** A stream's row: the state every expected-version check reads. */
export interface StreamState {
  /** The last version handed out; it stays through a soft delete. */
  readonly version: number
  readonly deleted: boolean
  readonly tombstoned: boolean
}

/** What a stream read looks at first, once, when it starts. */
export interface StreamReadState extends StreamState {
  /** Bumped by every erasure that erased something. */
  readonly epoch: number
  /** The lowest version the metadata lets a reader see (`truncateBefore`, `maxCount`). */
  readonly readFrom: number
  /** The version of the first event a reader sees, or `null` when it sees none. */
  readonly firstVisible: number | null
  /**
   * With `maxAge`: the oldest `recordedAt` still visible, by the backend's
   * clock, in microseconds since the epoch; `null` without `maxAge`.
   */
  readonly cutoffMicros: bigint | null
  /** Whether some of the stream's events are in the archive. */
  readonly archived: boolean
}

/** One page of a stream's events, `from` (inclusive) towards `to` (inclusive). */
export interface StreamPageQuery {
  readonly streamId: string
  readonly direction: "forward" | "backward"
  readonly from: number
  readonly to: number
  readonly cutoffMicros: bigint | null
  readonly archived: boolean
  readonly limit: number
}

/** One page of the global log: positions in `[from, to]` that pass `filter`. */
export interface LogPageQuery {
  /** The lowest position of the range (inclusive). */
  readonly from: bigint
  /** The highest position of the range (inclusive). */
  readonly to: bigint
  /** Which end of the range the page starts at: `"backward"` is newest first. Default forward. */
  readonly direction?: "forward" | "backward" | undefined
  readonly filter: ResolvedFilter
  readonly includeArchived: boolean
  readonly limit: number
}

/** A live reader's look right above its cursor: see `EventStoreDriver.readLogRun`. */
export interface LogRunQuery {
  readonly from: bigint
  readonly filter: ResolvedFilter
  readonly includeArchived: boolean
  /** The most positions the look examines. */
  readonly limit: number
}

/** What a live reader found right above its cursor, without waiting for anything. */
export interface LogRun {
  /**
   * The end of the run of positions from `from` on that are all committed
   * (no hole), at most `limit` long; `from - 1` when `from` itself is not
   * committed. Every position up to it is settled.
   */
  readonly settled: bigint
  /** The events of that run that pass the filter, in position order. */
  readonly events: ReadonlyArray<RecordedEvent>
  /**
   * The last position handed out when the look began: positions in
   * `(settled, drawn]` belong to appends in flight, or are holes.
   */
  readonly drawn: bigint
  /**
   * Whether an append of this store instance was running when the look
   * ended: its end wakes the reader, so a hole may be waited out with
   * wake-ups. Without one, a hole is left to the settled horizon at once.
   */
  readonly appending: boolean
}

/** One page of the live streams, in stream id order (code point order). */
export interface StreamsPageQuery {
  readonly after: string | undefined
  readonly category: string | undefined
  readonly limit: number
}

/** What a metadata write did. */
export type MetadataWrite =
  | { readonly _tag: "Written"; readonly metadataVersion: number }
  | { readonly _tag: "Tombstoned" }
  | { readonly _tag: "Conflict"; readonly actual: number }

/**
 * The check of a soft delete, tombstone or archive, made by the core: the
 * driver calls it on the stream's state while it holds the stream against
 * appends, and acts only when it passes (on the live version it returns).
 */
export type LifecycleCheck = (
  stream: StreamState | undefined
) => Either.Either<number, ConcurrencyError | StreamDeleted>

/** What the stream's metadata row holds, with whether it is tombstoned. */
export interface MetadataRow extends StoredMetadata {
  readonly tombstoned: boolean
}

/**
 * A backend. Every input is prepared and checked by the core; every failure
 * of the backend itself is a `StoreError`.
 */
export interface EventStoreDriver {
  /**
   * Stores the append atomically if the stream is not tombstoned, no event id
   * is stored yet and the expected version holds; otherwise stores nothing
   * and says what it saw. Inside a caller's transaction a driver may fail
   * with `ConcurrencyError` or `DuplicateEventId` where it cannot look again.
   */
  readonly append: (
    append: PreparedAppend
  ) => Effect.Effect<AppendAttempt, ConcurrencyError | DuplicateEventId | StoreError>
  /** The stream's state, or none when it has no row. */
  readonly streamState: (streamId: string) => Effect.Effect<Option.Option<StreamState>, StoreError>
  /** The stream's state with what a read needs, or none when it has no row. */
  readonly openStream: (streamId: string) => Effect.Effect<Option.Option<StreamReadState>, StoreError>
  readonly readStreamPage: (query: StreamPageQuery) => Effect.Effect<ReadonlyArray<RecordedEvent>, StoreError>
  readonly readLogPage: (query: LogPageQuery) => Effect.Effect<ReadonlyArray<RecordedEvent>, StoreError>
  /**
   * A position `h` such that every event at a position `<= h` is either
   * committed and visible to reads that start now, or will never exist.
   */
  readonly settledHorizon: Effect.Effect<bigint, StoreError>
  /**
   * The run of committed positions right above a live reader's cursor, and
   * the last position handed out, in one look that waits for nothing. The
   * caller guarantees that every position below `from` is settled.
   */
  readonly readLogRun: (query: LogRunQuery) => Effect.Effect<LogRun, StoreError>
  /**
   * Registers a live reader for the scope and returns the effect that waits
   * for its next wake-up (the log may have grown), or an idle timeout.
   */
  readonly wakeups: Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
  /** Whether a failed read is worth retrying (the database failed), rather than a refusal that would come again. */
  readonly isTransient: (error: StoreError) => boolean
  readonly listStreamsPage: (query: StreamsPageQuery) => Effect.Effect<ReadonlyArray<StreamInfo>, StoreError>
  readonly getMetadata: (streamId: string) => Effect.Effect<Option.Option<MetadataRow>, StoreError>
  /** Writes the metadata if `expected` holds; metadata does not create the stream. */
  readonly setMetadata: (metadata: PreparedMetadata) => Effect.Effect<MetadataWrite, StoreError>
  readonly deleteStream: (
    streamId: string,
    check: LifecycleCheck
  ) => Effect.Effect<void, ConcurrencyError | StreamDeleted | StoreError>
  /** Tombstones the stream, creating its row when it has none, so that it can never be created. */
  readonly tombstoneStream: (
    streamId: string,
    check: LifecycleCheck
  ) => Effect.Effect<void, ConcurrencyError | StreamDeleted | StoreError>
  /** Moves the stream's hot events into the archive; returns how many. */
  readonly archiveStream: (
    streamId: string,
    check: LifecycleCheck
  ) => Effect.Effect<number, ConcurrencyError | StreamDeleted | StoreError>
  /** Erases the stream's events in place and bumps its epoch if it erased any; returns how many were erased now. */
  readonly eraseStream: (streamId: string) => Effect.Effect<number, StoreError>
  /** Removes what metadata hides and what tombstones closed, in batches of at most `batchSize`. */
  readonly scavenge: (
    batchSize: number
  ) => Effect.Effect<{ readonly removed: number; readonly streams: number }, StoreError>
}
