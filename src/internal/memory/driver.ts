/**
 * The memory backend as a driver of the core: one `Ref` of the state, every
 * write one synchronous step of `Ref.modify` (atomic with respect to every
 * other, as the row locks make them on PostgreSQL), and a `PubSub` that wakes
 * live readers.
 */
import * as Arr from "effect/Array"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as RedBlackTree from "effect/RedBlackTree"
import * as Ref from "effect/Ref"
import type { ConcurrencyError, StreamDeleted } from "../../Errors.js"
import type { EventMetadata } from "../../EventData.js"
import type { RecordedEvent, StreamInfo } from "../../RecordedEvent.js"
import type {
  EventStoreDriver,
  LifecycleCheck,
  LogRun,
  MetadataRow,
  MetadataWrite,
  StreamReadState
} from "../core/driver.js"
import * as Validation from "../validation/index.js"
import { asJsonb, jsonbOf } from "./postgresEmulation.js"
import * as State from "./state.js"

type Step<A> = (state: State.State) => readonly [A, State.State]

// Stored (not scavenged) and, under maxAge, recorded at or after the cutoff.
const visible = (event: State.StoredEvent | undefined, cutoffMillis: number | null): event is State.StoredEvent =>
  event !== undefined && (cutoffMillis === null || event.recordedAt >= cutoffMillis)

export const make: Effect.Effect<EventStoreDriver> = Effect.gen(function*() {
  const ref = yield* Ref.make(State.empty())
  // Wakes live readers; a sliding buffer of one, since a wake-up carries no data.
  const appended = yield* PubSub.sliding<void>(1)
  const modify = <A>(step: Step<A>) => Ref.modify(ref, step)
  const current = Ref.get(ref)
  const now = Clock.currentTimeMillis

  // A lifecycle step: the core's check on the stream's state, then `act` on
  // the live version when it passes; a failed check changes nothing.
  const checked = <A>(
    streamId: string,
    check: LifecycleCheck,
    act: (state: State.State, row: State.StreamRow | undefined, live: number) => readonly [A, State.State]
  ): Effect.Effect<A, ConcurrencyError | StreamDeleted> =>
    Effect.flatten(modify((state): readonly [Either.Either<A, ConcurrencyError | StreamDeleted>, State.State] => {
      const row = State.findStream(state, streamId)
      const live = check(row)
      if (Either.isLeft(live)) return [Either.left(live.left), state]
      const [result, next] = act(state, row, live.right)
      return [Either.right(result), next]
    }))

  const readLogPage: EventStoreDriver["readLogPage"] = (query) =>
    Effect.map(current, (state) => {
      const matches = Validation.matches(query.filter)
      const page: Array<RecordedEvent> = []
      const first = query.from <= 1n ? 0 : Number(query.from - 1n)
      const last = query.to < BigInt(state.size) ? Number(query.to) : state.size
      const take = (i: number) => {
        const event = state.log[i] ?? (query.includeArchived ? state.archive[i] : undefined)
        if (event !== undefined && matches(event)) page.push(State.toRecordedEvent(event))
      }
      if (query.direction === "backward") {
        for (let i = last - 1; i >= first && page.length < query.limit; i--) take(i)
      } else {
        for (let i = first; i < last && page.length < query.limit; i++) take(i)
      }
      return page
    })

  return {
    append: (prepared) =>
      Effect.flatMap(now, (time) => {
        const asStored: Validation.PreparedAppend = {
          ...prepared,
          events: Arr.map(
            prepared.events,
            (event) => ({ ...event, data: asJsonb(event.data), metadata: asJsonb(event.metadata) })
          )
        }
        return modify((state) => State.append(state, asStored, time)).pipe(
          Effect.tap((attempt) => attempt._tag === "Appended" ? PubSub.publish(appended, undefined) : Effect.void)
        )
      }),

    streamState: (streamId) => Effect.map(current, (state) => Option.fromNullable(State.findStream(state, streamId))),

    openStream: (streamId) =>
      Effect.gen(function*() {
        const row = State.findStream(yield* current, streamId)
        if (row === undefined) return Option.none<StreamReadState>()
        const { events, maxAgeMillis, maxCount, truncateBefore, version: head } = row
        const readFrom = Math.max(1, truncateBefore ?? 1, maxCount === null ? 1 : head - maxCount + 1)
        // maxAge is measured once, now, by this store's clock.
        const cutoff = maxAgeMillis === null ? null : (yield* now) - maxAgeMillis
        let firstVisible = readFrom
        while (firstVisible <= head && !visible(events[firstVisible - 1], cutoff)) firstVisible++
        return Option.some({
          version: row.version,
          deleted: row.deleted,
          tombstoned: row.tombstoned,
          epoch: row.epoch,
          readFrom,
          firstVisible: firstVisible > head ? null : firstVisible,
          cutoffMicros: cutoff === null ? null : BigInt(cutoff) * 1000n,
          archived: false
        })
      }),

    readStreamPage: (query) =>
      Effect.map(current, (state) => {
        const row = State.findStream(state, query.streamId)
        const page: Array<RecordedEvent> = []
        if (row === undefined) return page
        const forward = query.direction === "forward"
        const cutoff = query.cutoffMicros === null ? null : Number(query.cutoffMicros / 1000n)
        for (
          let version = query.from;
          (forward ? version <= query.to : version >= query.to) && page.length < query.limit;
          version += forward ? 1 : -1
        ) {
          const event = row.events[version - 1]
          if (visible(event, cutoff)) page.push(State.toRecordedEvent(event))
        }
        return page
      }),

    readLogPage,

    settledHorizon: Effect.map(current, (state) => BigInt(state.size)),

    // Nothing here is ever in flight: every position up to the head is settled.
    readLogRun: (query) =>
      Effect.flatMap(current, (state) => {
        const drawn = BigInt(state.size)
        const end = query.from + BigInt(query.limit) - 1n
        const settled = end < drawn ? end : drawn
        return Effect.map(
          readLogPage({ ...query, to: settled }),
          (events): LogRun => ({
            settled: settled < query.from ? query.from - 1n : settled,
            events,
            drawn,
            appending: false
          })
        )
      }),

    wakeups: Effect.map(PubSub.subscribe(appended), (queue) => Queue.take(queue)),

    // Nothing here can fail the way a database does.
    isTransient: () => false,

    listStreamsPage: (query) =>
      Effect.map(current, ({ streams }) => {
        const page: Array<StreamInfo> = []
        for (const [, row] of query.after === undefined ? streams : RedBlackTree.greaterThan(streams, query.after)) {
          if (page.length >= query.limit) break
          if (State.isLive(row) && (query.category === undefined || row.category === query.category)) {
            page.push(State.toStreamInfo(row))
          }
        }
        return page
      }),

    getMetadata: (streamId) =>
      Effect.map(
        current,
        (state) =>
          Option.map(Option.fromNullable(State.findStream(state, streamId)), (row): MetadataRow => ({
            ...row,
            custom: JSON.parse(row.custom),
            createdAt: State.isLive(row) ? new Date(row.createdAt) : null
          }))
      ),

    setMetadata: (prepared) =>
      Effect.flatMap(now, (time) =>
        modify<MetadataWrite>((state) => {
          const row = State.findStream(state, prepared.streamId) ?? State.newStream(prepared.streamId, time)
          if (row.tombstoned) return [{ _tag: "Tombstoned" } as const, state]
          if (prepared.expected !== "any" && prepared.expected !== row.metadataVersion) {
            return [{ _tag: "Conflict", actual: row.metadataVersion } as const, state]
          }
          const metadataVersion = row.metadataVersion + 1
          return [
            { _tag: "Written", metadataVersion } as const,
            State.withStream(state, {
              ...row,
              metadataVersion,
              maxCount: prepared.maxCount,
              maxAgeMillis: prepared.maxAgeMillis,
              truncateBefore: prepared.truncateBefore,
              custom: asJsonb(prepared.custom)
            })
          ]
        })),

    deleteStream: (streamId, check) =>
      checked(
        streamId,
        check,
        (state, row, live) =>
          live === 0 || row === undefined ? [undefined, state] : [
            undefined,
            State.withStream(state, {
              ...row,
              deleted: true,
              truncateBefore: Math.max(row.truncateBefore ?? 0, row.version + 1),
              metadataVersion: row.metadataVersion + 1,
              deletions: [...row.deletions, row.version]
            })
          ]
      ),

    tombstoneStream: (streamId, check) =>
      Effect.flatMap(
        now,
        (time) =>
          checked(
            streamId,
            check,
            (
              state,
              row
            ) => [undefined, State.withStream(state, { ...(row ?? State.newStream(streamId, time)), tombstoned: true })]
          )
      ),

    archiveStream: (streamId, check) =>
      checked(streamId, check, (state, row, live) => {
        if (live === 0 || row === undefined) return [0, state]
        const log = state.log.slice()
        const archive = state.archive.slice()
        let archived = 0
        for (const event of row.events) {
          if (event === undefined) continue
          const index = Number(event.position - 1n)
          if (log[index] === undefined) continue
          log[index] = undefined
          archive[index] = event
          archived++
        }
        return [archived, { ...state, log, archive }]
      }),

    eraseStream: (streamId) =>
      Effect.flatMap(now, (time) =>
        modify((state) => {
          const row = State.findStream(state, streamId)
          const { changed, state: next } = State.rewrite(state, row === undefined ? [] : [row], (_, event) => {
            if (event.erasedAt !== undefined) return "keep"
            const metadata = JSON.parse(event.metadata) as EventMetadata
            const kept = {
              ...(metadata.correlationId === undefined ? {} : { correlationId: metadata.correlationId }),
              ...(metadata.causationId === undefined ? {} : { causationId: metadata.causationId })
            }
            return { ...event, data: "null", metadata: jsonbOf(kept), erasedAt: time }
          })
          // State folded from the events before is out of date: a new epoch.
          const erased = State.findStream(next, streamId)
          return [
            changed,
            changed === 0 || erased === undefined
              ? next
              : State.withStream(next, { ...erased, epoch: erased.epoch + 1 })
          ]
        })),

    scavenge: () =>
      Effect.flatMap(now, (time) =>
        modify((state) => {
          const candidates = Arr.filterMap(Arr.fromIterable(state.streams), ([, row]) =>
            row.tombstoned || row.truncateBefore !== null || row.maxCount !== null || row.maxAgeMillis !== null
              ? Option.some(row)
              : Option.none())
          const { changed, state: next, streams } = State.rewrite(state, candidates, (row, event) =>
            row.tombstoned ||
              event.streamVersion < (row.truncateBefore ?? 0) ||
              (row.maxCount !== null && event.streamVersion <= row.version - row.maxCount) ||
              (row.maxAgeMillis !== null && event.recordedAt < time - row.maxAgeMillis)
              ? undefined
              : "keep")
          return [{ removed: changed, streams }, next]
        }))
  } satisfies EventStoreDriver
})
