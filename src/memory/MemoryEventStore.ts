/**
 * The event store in memory: no database, the same semantics as the
 * PostgreSQL backend (the same validation, idempotency, ordering and JSON
 * behaviour), for fast tests. Each `layer` build is a fresh, empty store.
 *
 * @since 0.1.0
 */
import * as Arr from "effect/Array"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import type * as Order from "effect/Order"
import * as RedBlackTree from "effect/RedBlackTree"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as AppendRejection from "../AppendRejection.js"
import { type ConcurrencyError, type DuplicateEventId, type InvalidInput, StreamNotFound } from "../Errors.js"
import type { EventData, EventMetadata } from "../EventData.js"
import {
  type AppendOptions,
  type AppendResult,
  EventStore,
  type ListStreamsOptions,
  type ReadAllOptions,
  type ReadStreamOptions,
  type SubscribeOptions
} from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import type { RecordedEvent, StreamInfo } from "../RecordedEvent.js"
import * as Validation from "../Validation.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryEventStoreOptions {
  /** The largest `data` plus `metadata` of one event, in UTF-8 bytes (default 1 MiB). */
  readonly maxEventBytes?: number | undefined
}

// --- ordering ------------------------------------------------------------------

// JS `<` compares UTF-16 code units, which puts U+10000 and above (surrogate
// pairs, D800–DFFF) before U+E000–U+FFFF. PostgreSQL's `COLLATE "C"` compares
// UTF-8 bytes, which is code point order. Moving the surrogates above
// E000–FFFF at the first differing unit gives code point order.
const codeUnitRank = (unit: number): number => unit >= 0xe000 ? unit - 0x800 : unit >= 0xd800 ? unit + 0x2000 : unit

const byCodePoint: Order.Order<string> = (a, b) => {
  if (a === b) return 0
  const length = Math.min(a.length, b.length)
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x !== y) return codeUnitRank(x) < codeUnitRank(y) ? -1 : 1
  }
  return a.length < b.length ? -1 : 1
}

// --- jsonb -----------------------------------------------------------------------

// jsonb orders an object's keys by their length in UTF-8 bytes, then bytewise.
// Writing the text in that order makes `JSON.parse` of it enumerate keys as
// the PostgreSQL backend's rows do.
const jsonbKeyOrder = (a: string, b: string): number => Buffer.byteLength(a) - Buffer.byteLength(b) || byCodePoint(a, b)

const jsonbText = (value: unknown): string => {
  if (Array.isArray(value)) return "[" + value.map(jsonbText).join(",") + "]"
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => jsonbKeyOrder(a, b))
    return "{" + entries.map(([key, property]) => JSON.stringify(key) + ":" + jsonbText(property)).join(",") + "}"
  }
  return JSON.stringify(value)
}

const parseJson = (text: string): unknown => JSON.parse(text)

// --- state -------------------------------------------------------------------------

interface StoredEvent extends AppendRejection.StoredEvent {
  readonly category: string
  readonly eventType: string
  readonly schemaVersion: number
  /** JSON text in jsonb's key order, parsed afresh on every read. */
  readonly data: string
  readonly metadata: string
  readonly recordedAt: number
}

interface StreamRow {
  readonly streamId: string
  readonly category: string
  readonly version: number
  readonly createdAt: number
  readonly updatedAt: number
  /** Shared by every row of this stream; this row's events are the first `version`. */
  readonly events: Array<StoredEvent>
}

// Every state is a consistent snapshot that readers keep while they page. The
// maps are persistent; the event arrays are shared between states and only ever
// grow (an append pushes while it swaps in the next state), so a state holds
// its own prefix of them: `size` events of the log, `version` events of a stream.
interface State {
  readonly log: Array<StoredEvent>
  readonly size: number
  /** In stream id order (code point order, like `COLLATE "C"`). */
  readonly streams: RedBlackTree.RedBlackTree<string, StreamRow>
  readonly eventIds: HashMap.HashMap<string, StoredEvent>
}

type AppendOutcome = Effect.Effect<AppendResult, ConcurrencyError | DuplicateEventId>

// The append as one synchronous step of `Ref.modify`, so appends are atomic
// with respect to each other. Like the PostgreSQL statement, it writes nothing
// when any of the ids is already stored, and then classifies the rejection.
const commit = (
  state: State,
  append: Validation.PreparedAppend,
  now: number
): readonly [AppendOutcome, State] => {
  const stream = RedBlackTree.findFirst(state.streams, append.streamId)
  const actual = Option.isSome(stream) ? stream.value.version : 0
  const stored = append.events.flatMap((event) => Option.toArray(HashMap.get(state.eventIds, event.eventId)))
  if (stored.length > 0 || !ExpectedVersion.isSatisfiedBy(append.expected, actual)) {
    return [AppendRejection.classify(append, actual, stored), state]
  }
  const streamEvents = Option.isSome(stream) ? stream.value.events : []
  const recorded = append.events.map((event, i): StoredEvent => ({
    eventId: event.eventId,
    streamId: append.streamId,
    streamVersion: actual + i + 1,
    position: BigInt(state.size + i + 1),
    category: append.category,
    eventType: event.eventType,
    schemaVersion: event.schemaVersion,
    data: event.data,
    metadata: event.metadata,
    recordedAt: now
  }))
  for (const event of recorded) {
    state.log.push(event)
    streamEvents.push(event)
  }
  const row: StreamRow = {
    streamId: append.streamId,
    category: append.category,
    version: actual + recorded.length,
    createdAt: Option.isSome(stream) ? stream.value.createdAt : now,
    updatedAt: now,
    events: streamEvents
  }
  const next: State = {
    log: state.log,
    size: state.size + recorded.length,
    streams: RedBlackTree.insert(RedBlackTree.removeFirst(state.streams, append.streamId), append.streamId, row),
    eventIds: HashMap.mutate(state.eventIds, (ids) => {
      for (const event of recorded) HashMap.set(ids, event.eventId, event)
    })
  }
  return [Effect.succeed({ streamVersion: row.version, positions: recorded.map((event) => event.position) }), next]
}

const toRecordedEvent = (event: StoredEvent): RecordedEvent => ({
  eventId: event.eventId,
  streamId: event.streamId,
  streamVersion: event.streamVersion,
  position: event.position,
  eventType: event.eventType,
  schemaVersion: event.schemaVersion,
  data: parseJson(event.data),
  metadata: parseJson(event.metadata) as EventMetadata,
  recordedAt: new Date(event.recordedAt)
})

const toStreamInfo = (row: StreamRow): StreamInfo => ({
  streamId: row.streamId,
  category: row.category,
  version: row.version,
  createdAt: new Date(row.createdAt),
  updatedAt: new Date(row.updatedAt)
})

/**
 * Emits `length` items in chunks of `batchSize`, building each chunk only when
 * the consumer pulls it.
 */
const chunked = <A>(
  length: number,
  batchSize: number,
  slice: (start: number, end: number) => ReadonlyArray<A>
): Stream.Stream<A> =>
  Stream.unfoldChunk(0, (start) => {
    if (start >= length) return Option.none()
    const end = Math.min(start + batchSize, length)
    return Option.some([Chunk.unsafeFromArray(slice(start, end)), end] as const)
  })

/**
 * Builds an empty store.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: MemoryEventStoreOptions
): Effect.Effect<Context.Tag.Service<EventStore>, InvalidInput> =>
  Effect.gen(function*() {
    const limits: Validation.Limits = {
      maxEventBytes: yield* Validation.positiveInt(
        "maxEventBytes",
        options?.maxEventBytes,
        Validation.defaultLimits.maxEventBytes
      )
    }
    const ref = yield* Ref.make<State>({
      log: [],
      size: 0,
      streams: RedBlackTree.empty(byCodePoint),
      eventIds: HashMap.empty()
    })
    // Wakes live subscribers; a sliding buffer of one, since a wake-up carries no data.
    const appended = yield* PubSub.sliding<void>(1)

    const append = (streamId: string, eventData: ReadonlyArray<EventData>, appendOptions?: AppendOptions) =>
      Effect.gen(function*() {
        const prepared = yield* Validation.prepareAppend(streamId, eventData, appendOptions?.expectedVersion, limits)
        const asJsonb: Validation.PreparedAppend = {
          ...prepared,
          events: Arr.map(prepared.events, (event) => ({
            ...event,
            data: jsonbText(parseJson(event.data)),
            metadata: jsonbText(parseJson(event.metadata))
          }))
        }
        const now = yield* Clock.currentTimeMillis
        const result = yield* Effect.flatten(Ref.modify(ref, (state) => commit(state, asJsonb, now)))
        yield* PubSub.publish(appended, undefined)
        return result
      }).pipe(Effect.withSpan("EventStore.append", {
        attributes: { streamId, events: Array.isArray(eventData) ? eventData.length : 0 }
      }))

    const readStream = (streamId: string, readOptions?: ReadStreamOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const { batchSize, direction, from, limit } = yield* Validation.readStreamOptions(readOptions)
        const stream = RedBlackTree.findFirst((yield* Ref.get(ref)).streams, streamId)
        if (Option.isNone(stream)) return yield* new StreamNotFound({ streamId })
        // The versions the stream had when the read started, as indices [low, high).
        const { events, version: head } = stream.value
        if (direction === "forward") {
          const low = Math.min(Math.max(from ?? 1, 1), head + 1) - 1
          const high = Math.min(head, low + limit)
          return chunked(high - low, batchSize, (start, end) => events.slice(low + start, low + end).map(toRecordedEvent))
        }
        const high = Math.min(from ?? head, head)
        const low = Math.max(0, high - limit)
        return chunked(
          high - low,
          batchSize,
          (start, end) => events.slice(high - end, high - start).reverse().map(toRecordedEvent)
        )
      })).pipe(Stream.withSpan("EventStore.readStream", { attributes: { streamId } }))

    // Positions are dense here: position p is log[p - 1]. Reads only look at
    // the first `size` entries of the log they were given.
    const collectPage = (
      log: ReadonlyArray<StoredEvent>,
      size: number,
      from: number,
      matches: (event: StoredEvent) => boolean,
      max: number
    ) => {
      const page: Array<RecordedEvent> = []
      let i = from
      for (; i < size && page.length < max; i++) {
        const event = log[i]
        if (event !== undefined && matches(event)) page.push(toRecordedEvent(event))
      }
      return { page, next: i }
    }
    const indexOf = (from: bigint, size: number) => from <= 1n ? 0 : from > BigInt(size) ? size : Number(from - 1n)

    const readAll = (readOptions?: ReadAllOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        const { batchSize, filter, from, limit } = yield* Validation.readAllOptions(readOptions)
        const { log, size } = yield* Ref.get(ref)
        const matches = Validation.matches(filter)
        return Stream.unfoldChunk({ index: indexOf(from, size), remaining: limit }, ({ index, remaining }) => {
          const { next, page } = collectPage(log, size, index, matches, Math.min(batchSize, remaining))
          return page.length === 0
            ? Option.none()
            : Option.some([Chunk.unsafeFromArray(page), { index: next, remaining: remaining - page.length }] as const)
        })
      })).pipe(Stream.withSpan("EventStore.readAll"))

    const subscribe = (subscribeOptions?: SubscribeOptions) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const { batchSize, filter, from } = yield* Validation.subscribeOptions(subscribeOptions)
        const matches = Validation.matches(filter)
        // Subscribe to signals before the first read, so no append falls between the two.
        const signals = yield* PubSub.subscribe(appended)
        let index = from === "end" ? (yield* Ref.get(ref)).size : indexOf(from, Number.MAX_SAFE_INTEGER)
        const step = Effect.gen(function*() {
          const { log, size } = yield* Ref.get(ref)
          if (index >= size) {
            yield* Queue.take(signals)
            return Chunk.empty<RecordedEvent>()
          }
          const { next, page } = collectPage(log, size, index, matches, batchSize)
          index = next
          return Chunk.unsafeFromArray(page)
        })
        return Stream.repeatEffectChunk(step)
      })).pipe(Stream.withSpan("EventStore.subscribe"))

    const streamVersion = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const { streams } = yield* Ref.get(ref)
        return Option.map(RedBlackTree.findFirst(streams, streamId), (row) => row.version)
      }).pipe(Effect.withSpan("EventStore.streamVersion", { attributes: { streamId } }))

    const listStreams = (listOptions?: ListStreamsOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        const { after, batchSize, category, limit } = yield* Validation.listStreamsOptions(listOptions)
        const { streams } = yield* Ref.get(ref)
        const rows = (after === undefined ? streams : RedBlackTree.greaterThan(streams, after))[Symbol.iterator]()
        return Stream.unfoldChunk(limit, (remaining) => {
          const page: Array<StreamInfo> = []
          const size = Math.min(batchSize, remaining)
          while (page.length < size) {
            const next = rows.next()
            if (next.done === true) break
            const [, row] = next.value
            if (category === undefined || row.category === category) page.push(toStreamInfo(row))
          }
          return page.length === 0
            ? Option.none()
            : Option.some([Chunk.unsafeFromArray(page), remaining - page.length] as const)
        })
      })).pipe(Stream.withSpan("EventStore.listStreams"))

    return EventStore.of({
      append,
      readStream,
      readAll,
      subscribe,
      headPosition: Effect.map(Ref.get(ref), (state) => BigInt(state.size)),
      streamVersion,
      listStreams
    })
  })

/**
 * The store as a layer: every build is a fresh, empty store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: MemoryEventStoreOptions): Layer.Layer<EventStore, InvalidInput> =>
  Layer.effect(EventStore, make(options))
