/**
 * The memory backend's state: the log, the archive, the streams and the event
 * ids, as one persistent value swapped atomically, and the pure steps that
 * make the next state.
 */
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as RedBlackTree from "effect/RedBlackTree"
import type { EventMetadata } from "../../EventData.js"
import * as ExpectedVersion from "../../ExpectedVersion.js"
import type { RecordedEvent, StreamInfo } from "../../RecordedEvent.js"
import * as StreamId from "../../StreamId.js"
import type { AppendAttempt, StoredEvent as DriverStoredEvent, StreamState } from "../core/driver.js"
import { liveVersion } from "../core/streamState.js"
import type * as Validation from "../validation/index.js"
import { byCodePoint } from "./postgresEmulation.js"

export interface StoredEvent extends DriverStoredEvent {
  readonly category: string
  readonly eventType: string
  readonly schemaVersion: number
  /** JSON text in jsonb's key order, parsed afresh on every read. */
  readonly data: string
  readonly metadata: string
  readonly recordedAt: number
  readonly erasedAt?: number | undefined
}

export interface StreamRow extends StreamState {
  readonly streamId: string
  readonly category: string
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
  /** Bumped by every erasure that erased something. */
  readonly epoch: number
  /** The versions at which the stream was soft-deleted, oldest first. */
  readonly deletions: ReadonlyArray<number>
}

// Every state is a consistent snapshot. The maps are persistent; the event
// arrays are shared between states and only ever grow (an append pushes while
// it swaps in the next state), so a state holds its own prefix of them: `size`
// events of the log, `version` events of a stream. The lifecycle's rewrites
// (archive, erase, scavenge) never touch a shared array: they copy the ones
// they change into the next state.
export interface State {
  /** The hot log: position p is `log[p - 1]`, `undefined` once archived or scavenged. */
  readonly log: Array<StoredEvent | undefined>
  /** Archived events, indexed like the log. */
  readonly archive: Array<StoredEvent | undefined>
  readonly size: number
  /** In stream id order (code point order, like `COLLATE "C"`). */
  readonly streams: RedBlackTree.RedBlackTree<string, StreamRow>
  readonly eventIds: HashMap.HashMap<string, StoredEvent>
}

export const empty = (): State => ({
  log: [],
  archive: [],
  size: 0,
  streams: RedBlackTree.empty(byCodePoint),
  eventIds: HashMap.empty()
})

export const newStream = (streamId: string, now: number): StreamRow => ({
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

export const findStream = (state: State, streamId: string): StreamRow | undefined =>
  Option.getOrUndefined(RedBlackTree.findFirst(state.streams, streamId))

export const isLive = (row: StreamRow): boolean => row.version > 0 && !row.deleted && !row.tombstoned

export const withStream = (state: State, row: StreamRow): State => ({
  ...state,
  streams: RedBlackTree.insert(RedBlackTree.removeFirst(state.streams, row.streamId), row.streamId, row)
})

/** A stored event, with whether its stream had been soft-deleted right before it (its append found no stream). */
const withRecreated = (state: State, event: StoredEvent): DriverStoredEvent => ({
  eventId: event.eventId,
  streamId: event.streamId,
  streamVersion: event.streamVersion,
  position: event.position,
  recreated: findStream(state, event.streamId)?.deletions.includes(event.streamVersion - 1) === true
})

/**
 * The append as one synchronous step, so that appends are atomic with respect
 * to each other. Like the PostgreSQL function, it writes nothing when the
 * stream is tombstoned, an id is stored already or the version does not hold.
 */
export const append = (
  state: State,
  prepared: Validation.PreparedAppend,
  now: number
): readonly [AppendAttempt, State] => {
  const stream = findStream(state, prepared.streamId)
  const actual = liveVersion(stream)
  if (stream?.tombstoned === true) return [{ _tag: "Rejected", reason: "tombstoned", actual, stored: [] }, state]
  const stored = prepared.events.flatMap((event) => Option.toArray(HashMap.get(state.eventIds, event.eventId)))
  if (stored.length > 0) {
    return [{
      _tag: "Rejected",
      reason: "storedIds",
      actual,
      stored: stored.map((event) => withRecreated(state, event))
    }, state]
  }
  if (!ExpectedVersion.isSatisfiedBy(prepared.expected, actual)) {
    return [{ _tag: "Rejected", reason: "conflict", actual, stored: [] }, state]
  }
  // Versions continue after the last one handed out, also after a soft delete.
  const last = stream?.version ?? 0
  const streamEvents = stream?.events ?? []
  // recordedAt never decreases along a stream, whatever the clock does.
  const stamp = stream === undefined ? now : Math.max(now, stream.updatedAt)
  const recorded = prepared.events.map((event, i): StoredEvent => ({
    eventId: event.eventId,
    streamId: prepared.streamId,
    streamVersion: last + i + 1,
    position: BigInt(state.size + i + 1),
    category: prepared.category,
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
  const previous = stream ?? newStream(prepared.streamId, now)
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
    ...withStream(state, row),
    size: state.size + recorded.length,
    eventIds: HashMap.mutate(state.eventIds, (ids) => {
      for (const event of recorded) HashMap.set(ids, event.eventId, event)
    })
  }
  return [{ _tag: "Appended", streamVersion: row.version, positions: recorded.map((event) => event.position) }, next]
}

/**
 * Rewrites (or, with `undefined`, removes) events of some streams in a new
 * state. The arrays it changes (the streams' events, the log, the archive)
 * are copied first, once, never changed in place, so readers of earlier
 * states are undisturbed.
 */
export const rewrite = (
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

export const toRecordedEvent = (event: StoredEvent): RecordedEvent => ({
  eventId: event.eventId,
  streamId: event.streamId,
  streamVersion: event.streamVersion,
  position: event.position,
  eventType: event.eventType,
  schemaVersion: event.schemaVersion,
  data: JSON.parse(event.data),
  metadata: JSON.parse(event.metadata) as EventMetadata,
  recordedAt: new Date(event.recordedAt),
  ...(event.erasedAt === undefined ? {} : { erasedAt: new Date(event.erasedAt) })
})

export const toStreamInfo = (row: StreamRow): StreamInfo => ({
  streamId: row.streamId,
  category: row.category,
  version: row.version,
  createdAt: new Date(row.createdAt),
  updatedAt: new Date(row.updatedAt)
})
