/**
 * Reads: a stream's events as its metadata lets them be seen, the global log
 * up to the settled horizon, and the live streams, each planned here and
 * paged over the driver.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { type InvalidInput, type StoreError, StreamDeleted, StreamNotFound } from "../../Errors.js"
import type { ListStreamsOptions, ReadAllOptions, ReadStreamOptions } from "../../EventStore.js"
import type { RecordedEvent, StreamInfo } from "../../RecordedEvent.js"
import * as Validation from "../../Validation.js"
import type { EventStoreDriver } from "./driver.js"
import { paginate } from "./paging.js"
import { liveVersion } from "./streamState.js"

export const readStream = (driver: EventStoreDriver) =>
(
  streamId: string,
  options?: ReadStreamOptions
): Stream.Stream<RecordedEvent, StreamNotFound | StreamDeleted | InvalidInput | StoreError> =>
  Stream.unwrap(Effect.gen(function*() {
    yield* Validation.streamId(streamId)
    const { batchSize, direction, from, limit } = yield* Validation.readStreamOptions(options)
    const found = yield* driver.streamReadState(streamId)
    const stream = Option.getOrUndefined(found)
    if (stream?.tombstoned === true) return yield* new StreamDeleted({ streamId })
    if (stream === undefined || liveVersion(stream) === 0) return yield* new StreamNotFound({ streamId })
    // Up to the version the stream had when the read started, so that a long
    // read is one consistent prefix of the stream; from the lowest version its
    // metadata lets a reader see.
    const head = stream.version
    const low = Math.max(
      1,
      stream.truncateBefore ?? 1,
      stream.maxCount === null ? 1 : head - stream.maxCount + 1
    )
    const forward = direction === "forward"
    const end = forward ? head : low
    return paginate(
      { cursor: forward ? Math.max(from ?? 1, low) : Math.min(from ?? head, head), remaining: limit },
      ({ cursor }, size) =>
        driver.readStreamPage({
          streamId,
          direction,
          from: cursor,
          to: end,
          cutoffMicros: stream.cutoffMicros,
          archived: stream.archived,
          limit: size
        }),
      (last, state) =>
        (forward ? last.streamVersion >= end : last.streamVersion <= end) ? undefined : { ...state, cursor: last.streamVersion + (forward ? 1 : -1) },
      batchSize
    )
  })).pipe(Stream.withSpan("EventStore.readStream", { attributes: { streamId } }))

export const readAll = (driver: EventStoreDriver) =>
(options?: ReadAllOptions): Stream.Stream<RecordedEvent, InvalidInput | StoreError> =>
  Stream.unwrap(Effect.gen(function*() {
    const { batchSize, filter, from, includeArchived, limit } = yield* Validation.readAllOptions(options)
    const horizon = yield* driver.settledHorizon
    return paginate(
      { cursor: from, remaining: limit },
      ({ cursor }, size) => driver.readLogPage({ from: cursor, to: horizon, filter, includeArchived, limit: size }),
      (last, state) => last.position >= horizon ? undefined : { ...state, cursor: last.position + 1n },
      batchSize
    )
  })).pipe(Stream.withSpan("EventStore.readAll"))

export const listStreams = (driver: EventStoreDriver) =>
(options?: ListStreamsOptions): Stream.Stream<StreamInfo, InvalidInput | StoreError> =>
  Stream.unwrap(Effect.gen(function*() {
    const { after, batchSize, category, limit } = yield* Validation.listStreamsOptions(options)
    return paginate(
      { after, remaining: limit },
      (state, size) => driver.listStreamsPage({ after: state.after, category, limit: size }),
      (last, state) => ({ ...state, after: last.streamId }),
      batchSize
    )
  })).pipe(Stream.withSpan("EventStore.listStreams"))

export const streamVersion = (driver: EventStoreDriver) =>
(streamId: string): Effect.Effect<Option.Option<number>, InvalidInput | StoreError> =>
  Effect.gen(function*() {
    yield* Validation.streamId(streamId)
    const version = liveVersion(Option.getOrUndefined(yield* driver.streamState(streamId)))
    return version === 0 ? Option.none() : Option.some(version)
  }).pipe(Effect.withSpan("EventStore.streamVersion", { attributes: { streamId } }))
