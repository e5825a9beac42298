/**
 * Reads: a stream as its metadata lets it be seen (`viewStream`, and
 * `readStream` as a view's events), the global log up to the settled horizon,
 * and the live streams, each planned here and paged over the driver.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { type InvalidInput, type StoreError, StreamDeleted, StreamNotFound } from "../../Errors.js"
import type { ListStreamsOptions, ReadAllOptions, ReadStreamOptions, StreamView } from "../../EventStore.js"
import type { RecordedEvent, StreamInfo } from "../../RecordedEvent.js"
import * as Validation from "../validation/index.js"
import type { EventStoreDriver, StreamReadState } from "./driver.js"
import { paginate } from "./paging.js"
import { liveVersion } from "./streamState.js"

/** The view of a stream with no events (never written, soft-deleted, or only metadata). */
const emptyView = (firstVersion: number, epoch: number): StreamView => ({
  version: 0,
  firstVersion,
  epoch,
  events: (options) => Stream.unwrap(Effect.as(Validation.readStreamOptions(options), Stream.empty))
})

// The events of a live stream as of the moment it was opened: up to the
// version it had then, so that a long read is one consistent prefix of the
// stream, from the lowest version its metadata lets a reader see.
const eventsOf =
  (driver: EventStoreDriver, streamId: string, stream: StreamReadState) =>
  (options?: ReadStreamOptions): Stream.Stream<RecordedEvent, InvalidInput | StoreError> =>
    Stream.unwrap(Effect.map(Validation.readStreamOptions(options), ({ batchSize, direction, from, limit }) => {
      const head = stream.version
      const low = stream.readFrom
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
          (forward ? last.streamVersion >= end : last.streamVersion <= end)
            ? undefined
            : { ...state, cursor: last.streamVersion + (forward ? 1 : -1) },
        batchSize
      )
    }))

const open =
  (driver: EventStoreDriver) =>
  (streamId: string): Effect.Effect<StreamView, StreamDeleted | InvalidInput | StoreError> =>
    Effect.gen(function*() {
      yield* Validation.streamId(streamId)
      const found = yield* driver.openStream(streamId)
      if (Option.isNone(found)) return emptyView(1, 0)
      const stream = found.value
      if (stream.tombstoned) return yield* new StreamDeleted({ streamId })
      if (liveVersion(stream) === 0) return emptyView(stream.version + 1, stream.epoch)
      return {
        version: stream.version,
        firstVersion: stream.firstVisible ?? stream.version + 1,
        epoch: stream.epoch,
        events: eventsOf(driver, streamId, stream)
      }
    })

export const viewStream = (driver: EventStoreDriver) => {
  const view = open(driver)
  return (streamId: string): Effect.Effect<StreamView, StreamDeleted | InvalidInput | StoreError> =>
    view(streamId).pipe(Effect.withSpan("EventStore.viewStream", { attributes: { streamId } }))
}

// `readStream` is exactly a view's events, and `StreamNotFound` where the view has version 0.
export const readStream = (driver: EventStoreDriver) => {
  const view = open(driver)
  return (
    streamId: string,
    options?: ReadStreamOptions
  ): Stream.Stream<RecordedEvent, StreamNotFound | StreamDeleted | InvalidInput | StoreError> =>
    Stream.unwrap(Effect.gen(function*() {
      const checked = yield* Validation.readStreamOptions(options)
      const opened = yield* view(streamId)
      if (opened.version === 0) return yield* new StreamNotFound({ streamId })
      return opened.events(checked)
    })).pipe(Stream.withSpan("EventStore.readStream", { attributes: { streamId } }))
}

export const readAll =
  (driver: EventStoreDriver) => (options?: ReadAllOptions): Stream.Stream<RecordedEvent, InvalidInput | StoreError> =>
    Stream.unwrap(Effect.gen(function*() {
      const { batchSize, direction, filter, from, includeArchived, limit } = yield* Validation.readAllOptions(options)
      const horizon = yield* driver.settledHorizon
      if (direction === "backward") {
        // Down from the settled horizon only: above it an older event may still commit.
        const top = from === undefined || from > horizon ? horizon : from
        return paginate(
          { cursor: top, remaining: limit },
          ({ cursor }, size) =>
            cursor < 1n
              ? Effect.succeed([])
              : driver.readLogPage({ from: 1n, to: cursor, direction, filter, includeArchived, limit: size }),
          (last, state) => last.position <= 1n ? undefined : { ...state, cursor: last.position - 1n },
          batchSize
        )
      }
      return paginate(
        { cursor: from ?? 0n, remaining: limit },
        ({ cursor }, size) => driver.readLogPage({ from: cursor, to: horizon, filter, includeArchived, limit: size }),
        (last, state) => last.position >= horizon ? undefined : { ...state, cursor: last.position + 1n },
        batchSize
      )
    })).pipe(Stream.withSpan("EventStore.readAll"))

export const listStreams =
  (driver: EventStoreDriver) => (options?: ListStreamsOptions): Stream.Stream<StreamInfo, InvalidInput | StoreError> =>
    Stream.unwrap(Effect.gen(function*() {
      const { after, batchSize, category, limit } = yield* Validation.listStreamsOptions(options)
      return paginate(
        { after, remaining: limit },
        (state, size) => driver.listStreamsPage({ after: state.after, category, limit: size }),
        (last, state) => ({ ...state, after: last.streamId }),
        batchSize
      )
    })).pipe(Stream.withSpan("EventStore.listStreams"))

export const streamVersion =
  (driver: EventStoreDriver) => (streamId: string): Effect.Effect<Option.Option<number>, InvalidInput | StoreError> =>
    Effect.gen(function*() {
      yield* Validation.streamId(streamId)
      const version = liveVersion(Option.getOrUndefined(yield* driver.streamState(streamId)))
      return version === 0 ? Option.none() : Option.some(version)
    }).pipe(Effect.withSpan("EventStore.streamVersion", { attributes: { streamId } }))
