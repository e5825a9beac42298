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
import {
  ConcurrencyError,
  type DuplicateEventId,
  type InvalidInput,
  MetadataConcurrencyError,
  StreamDeleted
} from "../Errors.js"
import type { EventData, EventMetadata } from "../EventData.js"
import {
  type AppendOptions,
  type AppendResult,
  emptyStreamView,
  EventStore,
  makeStreamMetadata,
  makeStreamReads,
  type ListStreamsOptions,
  type ReadAllOptions,
  type ReadStreamOptions,
  type ScavengeOptions,
  type SetStreamMetadataOptions,
  type StreamLifecycleOptions,
  type StreamMetadata,
  type StreamMetadataInput,
  type StreamView,
  type SubscribeOptions
} from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import type { RecordedEvent, StreamInfo } from "../RecordedEvent.js"
import * as StreamId from "../StreamId.js"
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
  readonly erasedAt?: number | undefined
}

interface StreamRow {
  readonly streamId: string
  readonly category: string
  /** The last version handed out: it stays through a soft delete, so a recreated stream continues after it. */
  readonly version: number
  readonly createdAt: number
  readonly updatedAt: number
  /**
   * Shared by every row of this stream; this row's events are the first
   * `version` (index = version - 1), hot or archived; `undefined` once scavenged.
   */
  readonly events: Array<StoredEvent | undefined>
  readonly metadataVersion: number
  readonly maxCount: number | null
  readonly maxAgeMillis: number | null
  readonly truncateBefore: number | null
  /** JSON text in jsonb's key order. */
  readonly custom: string
  readonly deleted: boolean
  readonly tombstoned: boolean
  /** Bumped by every erasure that erased something. */
  readonly epoch: number
  /** The versions at which the stream was soft-deleted, oldest first. */
  readonly deletions: ReadonlyArray<number>
}

// Every state is a consistent snapshot that readers keep while they page. The
// maps are persistent; the event arrays are shared between states and only ever
// grow (an append pushes while it swaps in the next state), so a state holds
// its own prefix of them: `size` events of the log, `version` events of a stream.
// The lifecycle's rewrites (archive, erase, scavenge) never touch a shared
// array: they copy the ones they change into the next state.
interface State {
  /** The hot log: position p is `log[p - 1]`, `undefined` once archived or scavenged. */
  readonly log: Array<StoredEvent | undefined>
  /** Archived events, indexed like the log; a separate structure that `readAll` skips by default. */
  readonly archive: Array<StoredEvent | undefined>
  readonly size: number
  /** In stream id order (code point order, like `COLLATE "C"`). */
  readonly streams: RedBlackTree.RedBlackTree<string, StreamRow>
  readonly eventIds: HashMap.HashMap<string, StoredEvent>
}

const newStream = (streamId: string, now: number): StreamRow => ({
  streamId,
  category: StreamId.category(streamId),
  version: 0,
  createdAt: now,
  updatedAt: now,
  events: [],
  metadataVersion: 0,
  maxCount: null,
  maxAgeMillis: null,
  truncateBefore: null,
  custom: "{}",
  deleted: false,
  tombstoned: false,
  epoch: 0,
  deletions: []
})

/** The version an expected-version check sees: 0 for a stream with no events, deleted or tombstoned. */
const liveVersion = (stream: Option.Option<StreamRow>): number =>
  Option.isNone(stream) || stream.value.deleted || stream.value.tombstoned ? 0 : stream.value.version

const isLive = (row: StreamRow): boolean => row.version > 0 && !row.deleted && !row.tombstoned

const withStream = (state: State, row: StreamRow): State => ({
  ...state,
  streams: RedBlackTree.insert(RedBlackTree.removeFirst(state.streams, row.streamId), row.streamId, row)
})

type AppendOutcome = Effect.Effect<AppendResult, ConcurrencyError | DuplicateEventId | StreamDeleted>

// The append as one synchronous step of `Ref.modify`, so appends are atomic
// with respect to each other. Like the PostgreSQL statement, it writes nothing
// when any of the ids is already stored, and then classifies the rejection.
const commit = (
  state: State,
  append: Validation.PreparedAppend,
  now: number
): readonly [AppendOutcome, State] => {
  const stream = RedBlackTree.findFirst(state.streams, append.streamId)
  if (Option.isSome(stream) && stream.value.tombstoned) {
    return [Effect.fail(new StreamDeleted({ streamId: append.streamId })), state]
  }
  const actual = liveVersion(stream)
  const stored = append.events.flatMap((event) => Option.toArray(HashMap.get(state.eventIds, event.eventId)))
  if (stored.length > 0 || !ExpectedVersion.isSatisfiedBy(append.expected, actual)) {
    return [AppendRejection.classify(append, actual, stored.map((event) => withRecreated(state, event))), state]
  }
  // Versions continue after the last one handed out, also after a soft delete.
  const last = Option.isSome(stream) ? stream.value.version : 0
  const streamEvents = Option.isSome(stream) ? stream.value.events : []
  // recordedAt never decreases along a stream, whatever the clock does.
  const stamp = Option.isSome(stream) ? Math.max(now, stream.value.updatedAt) : now
  const recorded = append.events.map((event, i): StoredEvent => ({
    eventId: event.eventId,
    streamId: append.streamId,
    streamVersion: last + i + 1,
    position: BigInt(state.size + i + 1),
    category: append.category,
    eventType: event.eventType,
    schemaVersion: event.schemaVersion,
    data: event.data,
    metadata: event.metadata,
    recordedAt: stamp
  }))
  for (const event of recorded) {
    state.log.push(event)
    streamEvents.push(event)
  }
  const previous = Option.getOrElse(stream, () => newStream(append.streamId, now))
  const row: StreamRow = {
    ...previous,
    version: last + recorded.length,
    // A stream that did not exist (no events yet, or deleted) is created now.
    createdAt: actual === 0 ? now : previous.createdAt,
    updatedAt: stamp,
    events: streamEvents,
    deleted: false
  }
  const next: State = {
    log: state.log,
    archive: state.archive,
    size: state.size + recorded.length,
    streams: RedBlackTree.insert(RedBlackTree.removeFirst(state.streams, append.streamId), append.streamId, row),
    eventIds: HashMap.mutate(state.eventIds, (ids) => {
      for (const event of recorded) HashMap.set(ids, event.eventId, event)
    })
  }
  return [Effect.succeed({ streamVersion: row.version, positions: recorded.map((event) => event.position) }), next]
}

/** A stored event, with whether its stream had been soft-deleted right before it (its append found no stream). */
const withRecreated = (state: State, event: StoredEvent): AppendRejection.StoredEvent => {
  const row = RedBlackTree.findFirst(state.streams, event.streamId)
  return {
    ...event,
    recreated: Option.isSome(row) && row.value.deletions.includes(event.streamVersion - 1)
  }
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
  recordedAt: new Date(event.recordedAt),
  ...(event.erasedAt === undefined ? {} : { erasedAt: new Date(event.erasedAt) })
})

const toStreamInfo = (row: StreamRow): StreamInfo => ({
  streamId: row.streamId,
  category: row.category,
  version: row.version,
  createdAt: new Date(row.createdAt),
  updatedAt: new Date(row.updatedAt)
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
      archive: [],
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

    // The stream as it is now: what a reader may see of it, and a reader of
    // those events that keeps to this moment (the state's event arrays only grow).
    const view = (stream: Option.Option<StreamRow>, now: number): StreamView => {
      if (Option.isNone(stream) || liveVersion(stream) === 0) {
        return Option.isSome(stream) ? emptyStreamView(stream.value.version + 1, stream.value.epoch) : emptyStreamView(1, 0)
      }
      const { epoch, events, maxAgeMillis, maxCount, truncateBefore, version: head } = stream.value
      // The lowest version the metadata lets a reader see; maxAge measured once, now.
      const low = Math.max(1, truncateBefore ?? 1, maxCount === null ? 1 : head - maxCount + 1)
      const cutoff = maxAgeMillis === null ? -Infinity : now - maxAgeMillis
      const visible = (event: StoredEvent | undefined): event is StoredEvent => event !== undefined && event.recordedAt >= cutoff
      // The first visible event, or the next version when none is visible.
      let firstVersion = low
      while (firstVersion <= head && !visible(events[firstVersion - 1])) firstVersion++
      if (firstVersion > head) firstVersion = head + 1
      const read = (readOptions?: ReadStreamOptions) =>
        Stream.unwrap(Effect.map(Validation.readStreamOptions(readOptions), ({ batchSize, direction, from, limit }) => {
          const forward = direction === "forward"
          const first = forward ? Math.max(from ?? 1, low) : Math.min(from ?? head, head)
          return Stream.unfoldChunk({ version: first, remaining: limit }, ({ remaining, version }) => {
            const page: Array<RecordedEvent> = []
            const max = Math.min(batchSize, remaining)
            let next = version
            for (; (forward ? next <= head : next >= low) && page.length < max; next += forward ? 1 : -1) {
              const event = events[next - 1]
              if (visible(event)) page.push(toRecordedEvent(event))
            }
            return page.length === 0
              ? Option.none()
              : Option.some([Chunk.unsafeFromArray(page), { version: next, remaining: remaining - page.length }] as const)
          })
        }))
      return { version: head, firstVersion, epoch, events: read }
    }

    const openStream = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const stream = RedBlackTree.findFirst((yield* Ref.get(ref)).streams, streamId)
        if (Option.isSome(stream) && stream.value.tombstoned) return yield* new StreamDeleted({ streamId })
        return view(stream, yield* Clock.currentTimeMillis)
      })

    const { readStream, viewStream } = makeStreamReads(openStream)

    // Position p is at index p - 1 of the log (or of the archive, once archived).
    // Reads only look at the first `size` entries of the arrays they were given.
    const collectPage = (
      state: State,
      includeArchived: boolean,
      from: number,
      matches: (event: StoredEvent) => boolean,
      max: number
    ) => {
      const { archive, log, size } = state
      const page: Array<RecordedEvent> = []
      let i = from
      for (; i < size && page.length < max; i++) {
        const event = log[i] ?? (includeArchived ? archive[i] : undefined)
        if (event !== undefined && matches(event)) page.push(toRecordedEvent(event))
      }
      return { page, next: i }
    }
    const indexOf = (from: bigint, size: number) => from <= 1n ? 0 : from > BigInt(size) ? size : Number(from - 1n)

    const readAll = (readOptions?: ReadAllOptions) =>
      Stream.unwrap(Effect.gen(function*() {
        const { batchSize, filter, from, includeArchived, limit } = yield* Validation.readAllOptions(readOptions)
        const state = yield* Ref.get(ref)
        const matches = Validation.matches(filter)
        return Stream.unfoldChunk({ index: indexOf(from, state.size), remaining: limit }, ({ index, remaining }) => {
          const { next, page } = collectPage(state, includeArchived, index, matches, Math.min(batchSize, remaining))
          return page.length === 0
            ? Option.none()
            : Option.some([Chunk.unsafeFromArray(page), { index: next, remaining: remaining - page.length }] as const)
        })
      })).pipe(Stream.withSpan("EventStore.readAll"))

    const subscribe = (subscribeOptions?: SubscribeOptions) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const { batchSize, filter, from, includeArchived } = yield* Validation.subscribeOptions(subscribeOptions)
        const matches = Validation.matches(filter)
        // Subscribe to signals before the first read, so no append falls between the two.
        const signals = yield* PubSub.subscribe(appended)
        let index = from === "end" ? (yield* Ref.get(ref)).size : indexOf(from, Number.MAX_SAFE_INTEGER)
        const step = Effect.gen(function*() {
          const state = yield* Ref.get(ref)
          if (index >= state.size) {
            yield* Queue.take(signals)
            return Chunk.empty<RecordedEvent>()
          }
          const { next, page } = collectPage(state, includeArchived, index, matches, batchSize)
          index = next
          return Chunk.unsafeFromArray(page)
        })
        return Stream.repeatEffectChunk(step)
      })).pipe(Stream.withSpan("EventStore.subscribe"))

    const streamVersion = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const version = liveVersion(RedBlackTree.findFirst((yield* Ref.get(ref)).streams, streamId))
        return version === 0 ? Option.none() : Option.some(version)
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
            if (isLive(row) && (category === undefined || row.category === category)) page.push(toStreamInfo(row))
          }
          return page.length === 0
            ? Option.none()
            : Option.some([Chunk.unsafeFromArray(page), remaining - page.length] as const)
        })
      })).pipe(Stream.withSpan("EventStore.listStreams"))

    // --- lifecycle -----------------------------------------------------------------
    // Each operation is one synchronous step of `Ref.modify`, atomic with
    // respect to appends, as the row lock makes it on PostgreSQL.

    type Step<A, E> = (state: State) => readonly [Effect.Effect<A, E>, State]
    const modify = <A, E>(step: Step<A, E>) => Effect.flatten(Ref.modify(ref, step))

    const getStreamMetadata = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const stream = RedBlackTree.findFirst((yield* Ref.get(ref)).streams, streamId)
        if (Option.isNone(stream)) return { metadataVersion: 0, custom: {}, category: StreamId.category(streamId) }
        const row = stream.value
        if (row.tombstoned) return yield* new StreamDeleted({ streamId })
        return makeStreamMetadata({
          ...row,
          custom: parseJson(row.custom) as StreamMetadata["custom"],
          createdAt: isLive(row) ? new Date(row.createdAt) : null
        })
      }).pipe(Effect.withSpan("EventStore.getStreamMetadata", { attributes: { streamId } }))

    const setStreamMetadata = (
      streamId: string,
      metadata: StreamMetadataInput,
      metadataOptions?: SetStreamMetadataOptions
    ) =>
      Effect.gen(function*() {
        const prepared = yield* Validation.prepareMetadata(streamId, metadata, metadataOptions, limits)
        const now = yield* Clock.currentTimeMillis
        return yield* modify((state): ReturnType<
          Step<{ readonly metadataVersion: number }, StreamDeleted | MetadataConcurrencyError>
        > => {
          const row = Option.getOrElse(RedBlackTree.findFirst(state.streams, streamId), () => newStream(streamId, now))
          if (row.tombstoned) return [Effect.fail(new StreamDeleted({ streamId })), state]
          if (prepared.expected !== "any" && prepared.expected !== row.metadataVersion) {
            return [
              Effect.fail(
                new MetadataConcurrencyError({ streamId, expected: prepared.expected, actual: row.metadataVersion })
              ),
              state
            ]
          }
          const metadataVersion = row.metadataVersion + 1
          return [
            Effect.succeed({ metadataVersion }),
            withStream(state, {
              ...row,
              metadataVersion,
              maxCount: prepared.maxCount,
              maxAgeMillis: prepared.maxAgeMillis,
              truncateBefore: prepared.truncateBefore,
              custom: jsonbText(parseJson(prepared.custom))
            })
          ]
        })
      }).pipe(Effect.withSpan("EventStore.setStreamMetadata", { attributes: { streamId } }))

    // The expected-version check of a delete, tombstone or archive: the live
    // version (0 when the stream does not exist or is deleted), or a failure.
    const check = (
      streamId: string,
      expected: ExpectedVersion.ExpectedVersion,
      stream: Option.Option<StreamRow>
    ): ConcurrencyError | StreamDeleted | number => {
      if (Option.isSome(stream) && stream.value.tombstoned) return new StreamDeleted({ streamId })
      const actual = liveVersion(stream)
      return ExpectedVersion.isSatisfiedBy(expected, actual)
        ? actual
        : new ConcurrencyError({ streamId, expected, actual })
    }

    const deleteStream = (streamId: string, deleteOptions?: StreamLifecycleOptions) =>
      Effect.gen(function*() {
        const { expected } = yield* Validation.streamLifecycle(streamId, deleteOptions)
        return yield* modify((state): ReturnType<Step<void, ConcurrencyError | StreamDeleted>> => {
          const stream = RedBlackTree.findFirst(state.streams, streamId)
          const actual = check(streamId, expected, stream)
          if (typeof actual !== "number") return [Effect.fail(actual), state]
          if (actual === 0 || Option.isNone(stream)) return [Effect.void, state]
          const row = stream.value
          return [Effect.void, withStream(state, {
            ...row,
            deleted: true,
            truncateBefore: Math.max(row.truncateBefore ?? 0, row.version + 1),
            metadataVersion: row.metadataVersion + 1,
            deletions: [...row.deletions, row.version]
          })]
        })
      }).pipe(Effect.withSpan("EventStore.deleteStream", { attributes: { streamId } }))

    const tombstoneStream = (streamId: string, tombstoneOptions?: StreamLifecycleOptions) =>
      Effect.gen(function*() {
        const { expected } = yield* Validation.streamLifecycle(streamId, tombstoneOptions)
        const now = yield* Clock.currentTimeMillis
        return yield* modify((state): ReturnType<Step<void, ConcurrencyError | StreamDeleted>> => {
          const stream = RedBlackTree.findFirst(state.streams, streamId)
          const actual = check(streamId, expected, stream)
          if (typeof actual !== "number") return [Effect.fail(actual), state]
          const row = Option.getOrElse(stream, () => newStream(streamId, now))
          return [Effect.void, withStream(state, { ...row, tombstoned: true })]
        })
      }).pipe(Effect.withSpan("EventStore.tombstoneStream", { attributes: { streamId } }))

    const archiveStream = (streamId: string, archiveOptions?: StreamLifecycleOptions) =>
      Effect.gen(function*() {
        const { expected } = yield* Validation.streamLifecycle(streamId, archiveOptions)
        return yield* modify((state): ReturnType<Step<{ readonly archived: number }, ConcurrencyError | StreamDeleted>> => {
          const stream = RedBlackTree.findFirst(state.streams, streamId)
          const actual = check(streamId, expected, stream)
          if (typeof actual !== "number") return [Effect.fail(actual), state]
          if (actual === 0 || Option.isNone(stream)) return [Effect.succeed({ archived: 0 }), state]
          const log = state.log.slice()
          const archive = state.archive.slice()
          let archived = 0
          for (const event of stream.value.events) {
            if (event === undefined) continue
            const index = Number(event.position - 1n)
            if (log[index] === undefined) continue
            log[index] = undefined
            archive[index] = event
            archived++
          }
          return [
            Effect.succeed({ archived }),
            { ...state, log, archive }
          ]
        })
      }).pipe(Effect.withSpan("EventStore.archiveStream", { attributes: { streamId } }))

    /**
     * Rewrites (or, with `undefined`, removes) events of some streams in a new
     * state. The arrays it changes (the streams' events, the log, the archive)
     * are copied first, once, never changed in place, so readers of earlier
     * states are undisturbed.
     */
    const rewrite = (
      initial: State,
      rows: Iterable<StreamRow>,
      change: (row: StreamRow, event: StoredEvent) => StoredEvent | undefined | "keep"
    ): { readonly changed: number; readonly streams: number; readonly state: State } => {
      let state = initial
      let copied: { readonly log: State["log"]; readonly archive: State["archive"] } | undefined
      let changed = 0
      let streams = 0
      for (const row of rows) {
        let events: StreamRow["events"] | undefined
        row.events.forEach((event, i) => {
          if (event === undefined) return
          const next = change(row, event)
          if (next === "keep") return
          copied ??= { log: state.log.slice(), archive: state.archive.slice() }
          events ??= row.events.slice()
          events[i] = next
          const index = Number(event.position - 1n)
          if (copied.log[index] !== undefined) copied.log[index] = next
          else copied.archive[index] = next
          state = {
            ...state,
            eventIds: next === undefined
              ? HashMap.remove(state.eventIds, event.eventId)
              : HashMap.set(state.eventIds, event.eventId, next)
          }
          changed++
        })
        if (events !== undefined) {
          streams++
          state = withStream(state, { ...row, events })
        }
      }
      return { changed, streams, state: copied === undefined ? state : { ...state, ...copied } }
    }

    const eraseStream = (streamId: string) =>
      Effect.gen(function*() {
        yield* Validation.streamId(streamId)
        const now = yield* Clock.currentTimeMillis
        return yield* modify((state): ReturnType<Step<{ readonly erased: number }, never>> => {
          const { changed, state: next } = rewrite(state, Option.toArray(RedBlackTree.findFirst(state.streams, streamId)), (_, event) => {
            if (event.erasedAt !== undefined) return "keep"
            const metadata = parseJson(event.metadata) as EventMetadata
            const kept = {
              ...(metadata.correlationId === undefined ? {} : { correlationId: metadata.correlationId }),
              ...(metadata.causationId === undefined ? {} : { causationId: metadata.causationId })
            }
            return { ...event, data: "null", metadata: jsonbText(kept), erasedAt: now }
          })
          // State folded from the events before is out of date: a new epoch.
          const row = RedBlackTree.findFirst(next.streams, streamId)
          return [
            Effect.succeed({ erased: changed }),
            changed === 0 || Option.isNone(row) ? next : withStream(next, { ...row.value, epoch: row.value.epoch + 1 })
          ]
        })
      }).pipe(Effect.withSpan("EventStore.eraseStream", { attributes: { streamId } }))

    const scavenge = (scavengeOptions?: ScavengeOptions) =>
      Effect.gen(function*() {
        yield* Validation.scavengeOptions(scavengeOptions)
        const now = yield* Clock.currentTimeMillis
        return yield* modify((state): ReturnType<Step<{ readonly removed: number; readonly streams: number }, never>> => {
          const candidates = Arr.filterMap(Arr.fromIterable(state.streams), ([, row]) =>
            row.tombstoned || row.truncateBefore !== null || row.maxCount !== null || row.maxAgeMillis !== null
              ? Option.some(row)
              : Option.none())
          const { changed, state: next, streams } = rewrite(state, candidates, (row, event) =>
            row.tombstoned ||
              event.streamVersion < (row.truncateBefore ?? 0) ||
              (row.maxCount !== null && event.streamVersion <= row.version - row.maxCount) ||
              (row.maxAgeMillis !== null && event.recordedAt < now - row.maxAgeMillis)
              ? undefined
              : "keep")
          return [Effect.succeed({ removed: changed, streams }), next]
        })
      }).pipe(Effect.withSpan("EventStore.scavenge"))

    return EventStore.of({
      append,
      readStream,
      viewStream,
      readAll,
      subscribe,
      headPosition: Effect.map(Ref.get(ref), (state) => BigInt(state.size)),
      streamVersion,
      listStreams,
      getStreamMetadata,
      setStreamMetadata,
      deleteStream,
      tombstoneStream,
      archiveStream,
      eraseStream,
      scavenge
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
