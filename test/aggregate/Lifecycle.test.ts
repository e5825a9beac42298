/**
 * Aggregates and the stream lifecycle, on every backend. The rule: an
 * aggregate's state is the fold of the events `readStream` returns now, and
 * its version is the stream's version. A snapshot is only a shortcut to that
 * fold, so it is used only while it summarises exactly events that are still
 * visible and unchanged; soft deletes, truncation, `maxCount` / `maxAge`
 * windows, scavenges and erasures never bring hidden history back.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Arbitrary, Chunk, Effect, Either, FastCheck, Option, Schedule, Stream } from "effect"
import * as CommandHandler from "../../src/aggregate/CommandHandler.js"
import * as TypedEventStore from "../../src/events/TypedEventStore.js"
import { EventStore } from "../../src/EventStore.js"
import { backends, checkProperty, uniqueStream } from "../events/backends.js"
import { evolve, initialState, snapshotting, TallyCommand, TallyEvents } from "./tally.js"

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

/**
 * The state and version by the rule, no snapshot involved: every event
 * `readStream` returns, folded, and the stream's version.
 */
const fullReplay = (streamId: string) =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const tallies = yield* TypedEventStore.make(TallyEvents)
    const events = yield* collect(tallies.readStream(streamId)).pipe(
      Effect.catchTag("StreamNotFound", () => Effect.succeed([]))
    )
    const version = Option.getOrElse(yield* store.streamVersion(streamId), () => 0)
    return { state: events.reduce(evolve, initialState), version }
  })

const add = (amount: number): TallyCommand => ({ _tag: "Add", amount })

/** What a lifecycle operation or a command does to a tally's stream, for the property. */
type Step =
  | { readonly _tag: "Command"; readonly command: TallyCommand; readonly snapshot: boolean }
  | { readonly _tag: "Delete" }
  | { readonly _tag: "Metadata"; readonly truncateBefore: number | undefined; readonly maxCount: number | undefined }
  | { readonly _tag: "Scavenge" }
  | { readonly _tag: "Erase" }

const stepArbitrary: FastCheck.Arbitrary<Step> = FastCheck.oneof(
  {
    weight: 12,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("Command" as const),
      command: Arbitrary.make(TallyCommand),
      snapshot: FastCheck.boolean()
    })
  },
  { weight: 2, arbitrary: FastCheck.record({ _tag: FastCheck.constant("Delete" as const) }) },
  {
    weight: 3,
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("Metadata" as const),
      truncateBefore: FastCheck.option(FastCheck.integer({ min: 0, max: 14 }), { nil: undefined }),
      maxCount: FastCheck.option(FastCheck.integer({ min: 1, max: 5 }), { nil: undefined })
    })
  },
  { weight: 2, arbitrary: FastCheck.record({ _tag: FastCheck.constant("Scavenge" as const) }) },
  { weight: 1, arbitrary: FastCheck.record({ _tag: FastCheck.constant("Erase" as const) }) }
)

/** What a load or a replay gave: the state and version, or the tag of its failure. */
const outcome = <E extends { readonly _tag: string }>(
  effect: Effect.Effect<{ readonly state: unknown; readonly version: number }, E, EventStore>
) =>
  Effect.map(
    Effect.either(effect),
    Either.match({
      onLeft: (error) => ({ failed: error._tag }),
      onRight: ({ state, version }) => ({ state, version })
    })
  )

for (const backend of backends("aggregate_lifecycle")) {
  describe.skipIf(!backend.available)(`aggregates and the stream lifecycle on ${backend.name}`, () => {
    layer(backend.layer, { timeout: "120 seconds", excludeTestServices: true })((it) => {
      it.effect("after a soft delete and re-creation, load never uses the snapshot of the deleted history", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const tallies = yield* CommandHandler.make(snapshotting(undefined))
          const streamId = uniqueStream("Tally")
          yield* tallies.handle(streamId, add(5))
          yield* tallies.handle(streamId, add(6), { snapshot: true })
          expect(yield* tallies.load(streamId)).toMatchObject({ version: 2, snapshotVersion: 2, state: { total: 11 } })
          yield* store.deleteStream(streamId)
          const first = yield* tallies.handle(streamId, add(21))
          expect(first.state.total).toBe(21)
          // The tally of 11 must not come back: 21 + 1, not 11 + 21 + 1.
          const second = yield* tallies.handle(streamId, add(1))
          expect(second.state.total).toBe(22)
          const loaded = yield* tallies.load(streamId)
          expect({ state: loaded.state, version: loaded.version }).toEqual(yield* fullReplay(streamId))
          expect(loaded.state.total).toBe(22)
          expect(loaded.version).toBe(4)
        }))

      it.effect("a snapshot taken before a soft delete is not used even when the stream is re-created by a plain append", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const tallies = yield* CommandHandler.make(snapshotting(2))
          const streamId = uniqueStream("Tally")
          yield* tallies.handle(streamId, { _tag: "AddMany", amounts: [5, 6] })
          yield* store.deleteStream(streamId)
          yield* store.append(streamId, [{ eventType: "Added", data: { amount: 21 } }], {
            expectedVersion: "no_stream"
          })
          const loaded = yield* tallies.load(streamId)
          expect(loaded).toMatchObject({ version: 3, snapshotVersion: 0 })
          expect(loaded.state.total).toBe(21)
        }))

      it.effect("when truncateBefore hides every event, load returns the stream's real version and the aggregate can still be written", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const tallies = yield* CommandHandler.make(snapshotting(undefined), { retry: Schedule.stop })
          const streamId = uniqueStream("Tally")
          yield* tallies.handle(streamId, { _tag: "AddMany", amounts: [1, 2, 3] })
          yield* store.setStreamMetadata(streamId, { truncateBefore: 10 })
          expect(yield* tallies.load(streamId)).toEqual({ state: initialState, version: 3, snapshotVersion: 0 })
          const handled = yield* tallies.handle(streamId, add(4))
          expect(handled.version).toBe(4)
        }))

      it.effect("when maxAge hides every event of an idle stream, load returns the stream's real version, no snapshot from before, and the aggregate can still be written", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const tallies = yield* CommandHandler.make(snapshotting(undefined), { retry: Schedule.stop })
          const streamId = uniqueStream("Tally")
          yield* tallies.handle(streamId, { _tag: "AddMany", amounts: [1, 2, 3] }, { snapshot: true })
          yield* store.setStreamMetadata(streamId, { maxAge: "1 millis" })
          // Wait (bounded) until the events are older than a millisecond.
          yield* collect(store.readStream(streamId)).pipe(
            Effect.filterOrFail((events) => events.length === 0),
            Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.upTo("30 seconds")))
          )
          expect(yield* tallies.load(streamId)).toEqual({ state: initialState, version: 3, snapshotVersion: 0 })
          expect((yield* tallies.handle(streamId, add(4))).version).toBe(4)
        }))

      it.effect("after truncateBefore, snapshot + tail and a full replay agree: the state folds the visible events only", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const tallies = yield* CommandHandler.make(snapshotting(undefined))
          const streamId = uniqueStream("Tally")
          yield* tallies.handle(streamId, { _tag: "AddMany", amounts: [1, 2, 3, 4] }, { snapshot: true })
          yield* store.setStreamMetadata(streamId, { truncateBefore: 3 })
          yield* tallies.handle(streamId, add(5))
          const loaded = yield* tallies.load(streamId)
          expect({ state: loaded.state, version: loaded.version }).toEqual(yield* fullReplay(streamId))
          expect(loaded.state.total).toBe(3 + 4 + 5)
          // Snapshots taken under the truncation are used again.
          yield* tallies.snapshot(streamId)
          yield* tallies.handle(streamId, add(6))
          expect(yield* tallies.load(streamId)).toMatchObject({ version: 6, snapshotVersion: 5 })
          expect((yield* tallies.load(streamId)).state).toEqual((yield* fullReplay(streamId)).state)
        }))

      it.effect("when a maxCount window moves past a snapshot's first event, the snapshot is not used", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const tallies = yield* CommandHandler.make(snapshotting(undefined))
          const streamId = uniqueStream("Tally")
          yield* store.setStreamMetadata(streamId, { maxCount: 3 })
          yield* tallies.handle(streamId, { _tag: "AddMany", amounts: [1, 2] }, { snapshot: true })
          expect(yield* tallies.load(streamId)).toMatchObject({ version: 2, snapshotVersion: 2 })
          yield* store.append(streamId, [{ eventType: "Added", data: { amount: 10 } }, {
            eventType: "Added",
            data: { amount: 20 }
          }])
          const loaded = yield* tallies.load(streamId)
          expect(loaded).toMatchObject({ version: 4, snapshotVersion: 0 })
          expect(loaded.state.total).toBe(2 + 10 + 20)
        }))

      it.effect("relaxing truncateBefore after a scavenge removed the hidden events does not bring them back through a snapshot", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const tallies = yield* CommandHandler.make(snapshotting(undefined))
          const streamId = uniqueStream("Tally")
          yield* tallies.handle(streamId, { _tag: "AddMany", amounts: [1, 2, 3] }, { snapshot: true })
          yield* store.setStreamMetadata(streamId, { truncateBefore: 3 })
          yield* store.scavenge()
          yield* store.setStreamMetadata(streamId, {})
          const loaded = yield* tallies.load(streamId)
          expect({ state: loaded.state, version: loaded.version }).toEqual(yield* fullReplay(streamId))
          expect(loaded.state.total).toBe(3)
        }))

      it.effect("after an erasure, a snapshot saved before it is never used", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          const tallies = yield* CommandHandler.make(snapshotting(1))
          const streamId = uniqueStream("Tally")
          yield* tallies.handle(streamId, { _tag: "AddMany", amounts: [7, 8] })
          expect(yield* tallies.load(streamId)).toMatchObject({ version: 2, snapshotVersion: 2 })
          yield* store.eraseStream(streamId)
          // The erased events no longer decode as tallies: only a load that ignores the snapshot sees that.
          const outcome = yield* Effect.either(tallies.load(streamId))
          expect(outcome).toMatchObject({ _tag: "Left", left: { _tag: "EventDecodeError" } })
        }))

      it.effect("snapshot + tail equals a full replay for any commands interleaved with deletes, truncation, maxCount, scavenges and erasures (property)", () =>
        Effect.gen(function*() {
          const store = yield* EventStore
          yield* checkProperty(
            FastCheck.record({
              steps: FastCheck.array(stepArbitrary, { maxLength: backend.name === "memory" ? 30 : 14 }),
              every: FastCheck.option(FastCheck.integer({ min: 1, max: 4 }), { nil: undefined })
            }),
            ({ every, steps }) =>
              Effect.gen(function*() {
                const tallies = yield* CommandHandler.make(snapshotting(every))
                const streamId = uniqueStream("Tally")
                for (const step of steps) {
                  switch (step._tag) {
                    case "Command":
                      yield* Effect.either(tallies.handle(streamId, step.command, { snapshot: step.snapshot }))
                      break
                    case "Delete":
                      yield* store.deleteStream(streamId)
                      break
                    case "Metadata":
                      yield* store.setStreamMetadata(streamId, {
                        truncateBefore: step.truncateBefore,
                        maxCount: step.maxCount
                      })
                      break
                    case "Scavenge":
                      yield* store.scavenge()
                      break
                    case "Erase":
                      yield* store.eraseStream(streamId)
                      break
                  }
                  expect(yield* outcome(tallies.load(streamId))).toEqual(yield* outcome(fullReplay(streamId)))
                }
              }),
            { numRuns: backend.name === "memory" ? 100 : 15 }
          )
        }))
    })
  })
}
