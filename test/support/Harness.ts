/**
 * What the conformance suite needs from a backend, and the small helpers its
 * cases share.
 */
import { expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { inspect } from "node:util"
import type { InvalidInput, StoreError } from "../../src/Errors.js"
import type { EventData } from "../../src/EventData.js"
import { EventStore } from "../../src/EventStore.js"
import type { RecordedEvent, StreamInfo } from "../../src/RecordedEvent.js"

export interface StoreOptions {
  /** The largest `data` plus `metadata` of one event, in UTF-8 bytes. */
  readonly maxEventBytes: number
}

/**
 * A backend under test. `makeStore` returns a layer that, every time it is
 * provided, builds a new and empty store: the cases never see each other's
 * events.
 */
export interface Backend {
  readonly name: string
  readonly makeStore: (options: StoreOptions) => Layer.Layer<EventStore, unknown>
}

/** Every backend is built with this small limit, so that oversized payloads stay cheap. */
export const limits: StoreOptions = { maxEventBytes: 1024 }

/** A test case that runs `body` against a fresh store of `backend`, on the real clock. */
export const makeTest = (backend: Backend) =>
(
  name: string,
  body: () => Effect.Effect<void, unknown, EventStore>,
  timeout?: number
): void => it.live(name, () => Effect.provide(body(), backend.makeStore(limits)), timeout)

// --- results ---------------------------------------------------------------------

const hasTag = <E extends { readonly _tag: string }, T extends string>(
  error: E,
  tag: T
): error is Extract<E, { readonly _tag: T }> => error._tag === tag

/**
 * The failure of `self`, which must fail with `tag`; any success or other
 * failure fails the test with what happened instead.
 */
export const failsWith = <T extends string>(tag: T) =>
<A, E extends { readonly _tag: string }, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<Extract<E, { readonly _tag: T }>, never, R> =>
  Effect.matchEffect(self, {
    onSuccess: (value) => Effect.dieMessage(`expected a ${tag}, but it succeeded with ${inspect(value, { depth: 5 })}`),
    onFailure: (error) =>
      hasTag(error, tag)
        ? Effect.succeed(error)
        : Effect.dieMessage(`expected a ${tag}, but it failed with ${inspect(error, { depth: 5 })}`)
  })

/** Runs a stream to its end. */
export const collect = <A, E, R>(stream: Stream.Stream<A, E, R>): Effect.Effect<ReadonlyArray<A>, E, R> =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

/** The element at `index`, failing the test when there is none. */
export const nth = <A>(values: ReadonlyArray<A>, index: number): A => {
  const value = values[index]
  if (value === undefined) throw new Error(`expected an element at index ${index} of ${values.length}`)
  return value
}

/** 1, 2, … n. */
export const range = (from: number, to: number): ReadonlyArray<number> =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i)

// --- store access ----------------------------------------------------------------

type Store = EventStore

export const append = (...args: Parameters<Store["append"]>) =>
  Effect.flatMap(EventStore, (store) => store.append(...args))

export const readStream = (...args: Parameters<Store["readStream"]>) =>
  Effect.flatMap(EventStore, (store) => collect(store.readStream(...args)))

export const readAll = (...args: Parameters<Store["readAll"]>) =>
  Effect.flatMap(EventStore, (store) => collect(store.readAll(...args)))

export const streamVersion = (streamId: string) => Effect.flatMap(EventStore, (store) => store.streamVersion(streamId))

export const viewStream = (streamId: string) => Effect.flatMap(EventStore, (store) => store.viewStream(streamId))

export const listStreams = (...args: Parameters<Store["listStreams"]>) =>
  Effect.flatMap(EventStore, (store) => collect(store.listStreams(...args)))

export const getStreamMetadata = (streamId: string) =>
  Effect.flatMap(EventStore, (store) => store.getStreamMetadata(streamId))

export const setStreamMetadata = (...args: Parameters<Store["setStreamMetadata"]>) =>
  Effect.flatMap(EventStore, (store) => store.setStreamMetadata(...args))

export const deleteStream = (...args: Parameters<Store["deleteStream"]>) =>
  Effect.flatMap(EventStore, (store) => store.deleteStream(...args))

export const tombstoneStream = (...args: Parameters<Store["tombstoneStream"]>) =>
  Effect.flatMap(EventStore, (store) => store.tombstoneStream(...args))

export const archiveStream = (...args: Parameters<Store["archiveStream"]>) =>
  Effect.flatMap(EventStore, (store) => store.archiveStream(...args))

export const eraseStream = (streamId: string) => Effect.flatMap(EventStore, (store) => store.eraseStream(streamId))

export const scavenge = (...args: Parameters<Store["scavenge"]>) =>
  Effect.flatMap(EventStore, (store) => store.scavenge(...args))

// --- time ------------------------------------------------------------------------

/**
 * Makes every event a store holds `millis` older, as if its clock had moved
 * on by that much, for the `maxAge` cases. Provided beside `EventStore` by the
 * backends' `makeStore` layers: on memory it moves the `Clock` the store
 * reads, on SQL it rewrites `recorded_at`.
 */
export class Aging extends Context.Tag("test/Aging")<Aging, {
  readonly age: (millis: number) => Effect.Effect<void, unknown>
}>() {}

export const age = (millis: number): Effect.Effect<void, unknown> =>
  Effect.flatMap(
    Effect.serviceOption(Aging),
    Option.match({
      onNone: () => Effect.dieMessage("this backend's makeStore provides no Aging"),
      onSome: (aging) => aging.age(millis)
    })
  )

/**
 * For an in-memory store: the live clock, `millis` ahead for every call to
 * `age`. The store takes `recordedAt` and `maxAge`'s "now" from it.
 */
export const memoryAging: Layer.Layer<Aging> = Layer.unwrapEffect(Effect.sync(() => {
  const live = Clock.make()
  let offset = 0
  const clock: Clock.Clock = {
    [Clock.ClockTypeId]: Clock.ClockTypeId,
    unsafeCurrentTimeMillis: () => live.unsafeCurrentTimeMillis() + offset,
    currentTimeMillis: Effect.sync(() => live.unsafeCurrentTimeMillis() + offset),
    unsafeCurrentTimeNanos: () => live.unsafeCurrentTimeNanos() + BigInt(offset) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => live.unsafeCurrentTimeNanos() + BigInt(offset) * 1_000_000n),
    sleep: (duration) => live.sleep(duration)
  }
  return Layer.merge(
    Layer.setClock(clock),
    Layer.succeed(Aging, { age: (millis) => Effect.sync(() => void (offset += millis)) })
  )
}))

/** Everything a reader can see of the store. */
export interface Snapshot {
  readonly events: ReadonlyArray<RecordedEvent>
  readonly streams: ReadonlyArray<StreamInfo>
}

export const snapshot: Effect.Effect<Snapshot, InvalidInput | StoreError, EventStore> = Effect.all({
  events: readAll(),
  streams: listStreams()
})

/**
 * Runs `attempt` and checks that nothing a reader can see changed: the global
 * log, the stream list, and the versions of `streamIds`.
 */
export const leavesStoreUnchanged = <A, E, R>(
  attempt: Effect.Effect<A, E, R>,
  streamIds: ReadonlyArray<string> = []
): Effect.Effect<A, E | InvalidInput | StoreError, R | EventStore> =>
  Effect.gen(function*() {
    const before = yield* snapshot
    const versionsBefore = yield* Effect.forEach(streamIds, streamVersion)
    const result = yield* attempt
    expect(yield* snapshot).toEqual(before)
    expect(yield* Effect.forEach(streamIds, streamVersion)).toEqual(versionsBefore)
    return result
  })

// --- events ----------------------------------------------------------------------

export const uuid = (): string => crypto.randomUUID()

/** An event of `eventType` whose data names it, with a fresh id. */
export const event = (eventType: string, data: unknown = { eventType }, extra?: Partial<EventData>): EventData => ({
  eventId: uuid(),
  eventType,
  data,
  ...extra
})

/** `count` events with fresh ids, typed `${prefix}1`, `${prefix}2`, … */
export const events = (count: number, prefix = "Event"): ReadonlyArray<EventData> =>
  range(1, count).map((i) => event(`${prefix}${i}`, { n: i }))

/** The ids of events, in order (given ids only). */
export const idsOf = (
  values: ReadonlyArray<{ readonly eventId?: string | undefined }>
): ReadonlyArray<string | undefined> => values.map((value) => value.eventId)

export const versionsOf = (values: ReadonlyArray<RecordedEvent>): ReadonlyArray<number> =>
  values.map((value) => value.streamVersion)

export const positionsOf = (values: ReadonlyArray<RecordedEvent>): ReadonlyArray<bigint> =>
  values.map((value) => value.position)

/** Strictly increasing. */
export const expectIncreasing = (values: ReadonlyArray<bigint>): void => {
  for (let i = 1; i < values.length; i++) {
    const previous = nth(values, i - 1)
    const current = nth(values, i)
    expect(current > previous, `position ${current} after ${previous}`).toBe(true)
  }
}

export const lowerCaseUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
