/**
 * The event store service: append-only streams with optimistic concurrency and
 * one global ordered log.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type { ConcurrencyError, DuplicateEventId, InvalidInput, StoreError, StreamNotFound } from "./Errors.js"
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
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ReadAllOptions {
  /** The first global position to return (inclusive, default the start). To resume after a checkpoint `c`, pass `c + 1n`. */
  readonly from?: bigint | undefined
  /** Return at most this many events. */
  readonly limit?: number | undefined
  /** Events fetched per round trip (default 500, at most 10,000). */
  readonly batchSize?: number | undefined
  readonly filter?: EventFilter | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions {
  /**
   * The first global position to deliver (inclusive, default the start of the
   * log), or `"end"` for only what is appended after the subscription starts.
   * To resume after a checkpoint `c`, pass `c + 1n`.
   */
  readonly from?: bigint | "end" | undefined
  /** Events fetched per round trip while catching up (default 500, at most 10,000). */
  readonly batchSize?: number | undefined
  readonly filter?: EventFilter | undefined
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
 * @since 0.1.0
 * @category models
 */
export type AppendError = ConcurrencyError | DuplicateEventId | InvalidInput | StoreError

/**
 * The event store. Every backend provides the same semantics; the conformance
 * suite in `test/` holds them to it.
 *
 * @since 0.1.0
 * @category tags
 */
export class EventStore extends Context.Tag("effect-event-store/EventStore")<EventStore, {
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
   * memory. Fails with `StreamNotFound` when the stream has no events.
   */
  readonly readStream: (
    streamId: string,
    options?: ReadStreamOptions
  ) => Stream.Stream<RecordedEvent, StreamNotFound | InvalidInput | StoreError>
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
   * reads up to the settled horizon.
   */
  readonly subscribe: (options?: SubscribeOptions) => Stream.Stream<RecordedEvent, InvalidInput | StoreError>
  /**
   * The position of the last event every reader can see now (0 for an empty
   * log): what `readAll` would read up to if it started now.
   */
  readonly headPosition: Effect.Effect<bigint, StoreError>
  /** The stream's current version, or none when it has no events. */
  readonly streamVersion: (streamId: string) => Effect.Effect<Option.Option<number>, InvalidInput | StoreError>
  /** The streams, in stream id order, paged. */
  readonly listStreams: (options?: ListStreamsOptions) => Stream.Stream<StreamInfo, InvalidInput | StoreError>
}>() {}
