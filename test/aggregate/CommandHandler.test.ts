/**
 * The command handler on every backend: load (snapshot + tail), decide,
 * append at the loaded version, retry real conflicts from a fresh load, save
 * snapshots by policy, and carry correlation ids into the events' metadata.
 * The property at the end: whatever the commands and the snapshot policy,
 * loading from a snapshot gives the same state and version as a full replay.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import {
  Arbitrary,
  Cause,
  Chunk,
  Deferred,
  Effect,
  Exit,
  FastCheck,
  Layer,
  Logger,
  LogLevel,
  Option,
  Ref,
  Schedule,
  Stream
} from "effect"
import * as Aggregate from "../../src/aggregate/Aggregate.js"
import * as CommandHandler from "../../src/aggregate/CommandHandler.js"
import * as Correlation from "../../src/aggregate/Correlation.js"
import { StoreError } from "../../src/Errors.js"
import * as TypedEventStore from "../../src/events/TypedEventStore.js"
import { EventStore } from "../../src/EventStore.js"
import { MemoryEventStore, MemorySnapshotStore } from "../../src/memory/index.js"
import { SnapshotStore } from "../../src/SnapshotStore.js"
import { backends, checkProperty, uniqueStream } from "../events/backends.js"
import { startupTimeout } from "../support/wait.js"
import {
  Added,
  Cleared,
  Gate,
  GatedTally,
  initialState,
  snapshotting,
  Tally,
  TallyCommand,
  type TallyEvent,
  TallyEvents,
  type TallyState,
  TooMuch
} from "./tally.js"

const collect = <A, E, R>(stream: Stream.Stream<A, E, R>) =>
  Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

/** The state and version from every event of the stream, no snapshot involved. */
const fullReplay = (streamId: string) =>
  Effect.gen(function*() {
    const tallies = yield* TypedEventStore.make(TallyEvents)
    const events = yield* collect(tallies.readStream(streamId)).pipe(
      Effect.catchTag("StreamNotFound", () => Effect.succeed([]))
    )
    return { state: Aggregate.fold(Tally, events), version: events.length }
  })

const snapshotVersion = (streamId: string) =>
  Effect.flatMap(
    SnapshotStore,
    (snapshots) => Effect.map(snapshots.load(streamId), Option.map((s) => [s.version, s.schemaVersion]))
  )

/** A gate that opens once `parties` calls wait at it; later calls pass straight through. */
const makeGate = (parties: number) =>
  Effect.gen(function*() {
    const calls = yield* Ref.make(0)
    const open = yield* Deferred.make<void>()
    const wait = Effect.gen(function*() {
      const n = yield* Ref.updateAndGet(calls, (n) => n + 1)
      if (n >= parties) yield* Deferred.succeed(open, undefined)
      yield* Deferred.await(open)
    })
    return { calls, layer: Layer.succeed(Gate, wait) }
  })

const add = (amount: number): TallyCommand => ({ _tag: "Add", amount })

// First: `layer(…)` from @effect/vitest rebinds the module's `it.effect` to its
// own layer, so plain `it.effect` tests after a layer block would run on it.
describe("CommandHandler (memory only)", () => {
  const memory = Layer.merge(MemoryEventStore.layer(), MemorySnapshotStore.layer())

  it.live("a snapshot that cannot be saved does not fail the command: the events are stored", () =>
    Effect.gen(function*() {
      const tallies = yield* CommandHandler.make(snapshotting(1))
      const result = yield* tallies.handle("Tally-broken", add(7))
      expect(result.version).toBe(1)
      expect(yield* (yield* EventStore).streamVersion("Tally-broken")).toEqual(Option.some(1))
    }).pipe(
      Logger.withMinimumLogLevel(LogLevel.Error),
      Effect.provide(MemoryEventStore.layer()),
      Effect.provideService(SnapshotStore, {
        load: () => Effect.succeed(Option.none()),
        save: () => Effect.fail(new StoreError({ message: "disk full" })),
        delete: () => Effect.void
      })
    ))

  it.live("an aggregate that saves snapshots without a SnapshotStore is a defect that says so", () =>
    Effect.gen(function*() {
      const make = CommandHandler.make(
        snapshotting(5) as Aggregate.Aggregate<TallyState, TallyCommand, TallyEvent, TooMuch>
      )
      const exit = yield* Effect.exit(make)
      expect(exit).toMatchObject({ _tag: "Failure" })
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toMatch(
        /Aggregate "Tally" saves snapshots, but no SnapshotStore is provided to its command handler/
      )
    }).pipe(Effect.provide(MemoryEventStore.layer())))

  it.live("a snapshot on demand for an aggregate without snapshot options is a defect that says so", () =>
    Effect.gen(function*() {
      const tallies = yield* CommandHandler.make(Tally)
      const exit = yield* Effect.exit(tallies.handle("Tally-x", add(1), { snapshot: true }))
      expect(String(Exit.isFailure(exit) ? exit.cause : "")).toMatch(/has no snapshot options/)
    }).pipe(Effect.provide(memory)))

  it.live("the default retry gives up after a few quick attempts and returns the ConcurrencyError", () =>
    Effect.gen(function*() {
      // A decider that always appends behind the handler's back, so every attempt conflicts.
      const store = yield* EventStore
      const attempts = yield* Ref.make(0)
      const Sabotaged = Aggregate.make({
        name: "Sabotaged",
        events: TallyEvents,
        initialState,
        evolve: Tally.evolve,
        decide: () =>
          Effect.gen(function*() {
            yield* Ref.update(attempts, (n) => n + 1)
            yield* Effect.orDie(store.append("Tally-sabotaged", [{ eventType: "Cleared", data: {} }]))
            return [Cleared.make({})]
          })
      })
      const tallies = yield* CommandHandler.make(Sabotaged)
      const error = yield* Effect.flip(tallies.handle("Tally-sabotaged", add(1)))
      expect(error._tag).toBe("ConcurrencyError")
      expect(yield* Ref.get(attempts)).toBe(6)
    }).pipe(Effect.provide(memory)))
})

for (const backend of backends("handler")) {
  describe.skipIf(!backend.available)(`CommandHandler on ${backend.name}`, () => {
    layer(backend.layer, { timeout: startupTimeout, excludeTestServices: true })((it) => {
      it.effect("loads, decides, appends at the loaded version and returns the new state", () =>
        Effect.gen(function*() {
          const tallies = yield* CommandHandler.make(Tally)
          const streamId = uniqueStream("Tally")
          const first = yield* tallies.handle(streamId, add(5))
          expect(first).toMatchObject({ streamId, version: 1, events: [Added.make({ amount: 5 })] })
          expect(first.state).toEqual({ total: 5, entries: 1, checksum: 5 })
          const second = yield* tallies.handle(streamId, { _tag: "AddMany", amounts: [1, 2] })
          expect(second.version).toBe(3)
          expect(second.positions).toHaveLength(2)
          expect(yield* tallies.load(streamId)).toEqual({ state: second.state, version: 3, snapshotVersion: 0 })
          expect(yield* fullReplay(streamId)).toEqual({ state: second.state, version: 3 })
        }))

      it.effect("a command that decides nothing appends nothing", () =>
        Effect.gen(function*() {
          const tallies = yield* CommandHandler.make(Tally)
          const streamId = uniqueStream("Tally")
          const result = yield* tallies.handle(streamId, { _tag: "Nothing" })
          expect(result).toEqual({ streamId, events: [], state: initialState, version: 0, positions: [] })
          expect(yield* (yield* EventStore).streamVersion(streamId)).toEqual(Option.none())
        }))

      it.effect("a domain error comes back as it is, is not retried, and stores nothing", () =>
        Effect.gen(function*() {
          const gate = yield* makeGate(1)
          const tallies = yield* CommandHandler.make(GatedTally)
          const streamId = uniqueStream("Tally")
          yield* tallies.handle(streamId, { _tag: "AddMany", amounts: Array.from({ length: 10 }, () => 100) }).pipe(
            Effect.provide(gate.layer)
          )
          const error = yield* Effect.flip(tallies.handle(streamId, add(1)).pipe(Effect.provide(gate.layer)))
          expect(error).toEqual(new TooMuch({ total: 1_000, amount: 1 }))
          expect(yield* Ref.get(gate.calls)).toBe(2)
          expect(yield* (yield* EventStore).streamVersion(streamId)).toEqual(Option.some(10))
        }))

      it.effect("correlation ids come from the fiber and from the command (the command's win) into every event", () =>
        Effect.gen(function*() {
          const tallies = yield* CommandHandler.make(Tally)
          const streamId = uniqueStream("Tally")
          yield* tallies.handle(streamId, { _tag: "AddMany", amounts: [1, 2] }).pipe(
            Correlation.withCorrelation({ correlationId: "request-1", causationId: "message-1" })
          )
          yield* Effect.gen(function*() {
            expect(yield* Correlation.current).toEqual({ correlationId: "request-2", causationId: "message-2" })
            yield* tallies.handle(streamId, add(3), { causationId: "command-3", metadata: { user: "ada" } })
          }).pipe(
            Correlation.withCorrelation({ correlationId: "request-2" }),
            Correlation.withCorrelation({ correlationId: "outer", causationId: "message-2" })
          )
          yield* tallies.handle(streamId, add(4))
          const events = yield* collect((yield* EventStore).readStream(streamId))
          expect(events.map((event) => event.metadata)).toEqual([
            { correlationId: "request-1", causationId: "message-1" },
            { correlationId: "request-1", causationId: "message-1" },
            { correlationId: "request-2", causationId: "command-3", user: "ada" },
            {}
          ])
        }))

      it.effect("a real conflict is retried from a fresh load, and both commands land", () =>
        Effect.gen(function*() {
          const gate = yield* makeGate(2)
          const tallies = yield* CommandHandler.make(GatedTally)
          const streamId = uniqueStream("Tally")
          // Both load version 0 and decide before either appends: one append must lose.
          const [a, b] = yield* Effect.all([tallies.handle(streamId, add(1)), tallies.handle(streamId, add(2))], {
            concurrency: "unbounded"
          }).pipe(Effect.provide(gate.layer))
          expect([a.version, b.version].sort()).toEqual([1, 2])
          expect(yield* Ref.get(gate.calls)).toBe(3)
          const { state, version } = yield* fullReplay(streamId)
          expect(version).toBe(2)
          expect(state.total).toBe(3)
          expect([a, b].find((result) => result.version === 2)?.state).toEqual(state)
        }))

      it.effect("without retries, the loser of a race gets the ConcurrencyError and stores nothing", () =>
        Effect.gen(function*() {
          const gate = yield* makeGate(2)
          const tallies = yield* CommandHandler.make(GatedTally, { retry: Schedule.stop })
          const streamId = uniqueStream("Tally")
          const [a, b] = yield* Effect.all([
            Effect.exit(tallies.handle(streamId, add(1))),
            Effect.exit(tallies.handle(streamId, add(2)))
          ], { concurrency: "unbounded" }).pipe(Effect.provide(gate.layer))
          const failures = [a, b].flatMap((exit) =>
            Exit.isFailure(exit) ? Option.toArray(Cause.failureOption(exit.cause)) : []
          )
          expect(failures).toHaveLength(1)
          const [error] = failures
          expect(error).toMatchObject({ _tag: "ConcurrencyError", streamId, expected: "no_stream", actual: 1 })
          expect(yield* Ref.get(gate.calls)).toBe(2)
          expect((yield* fullReplay(streamId)).version).toBe(1)
        }))

      it.effect("a caller's expected version: met, the command lands with correlation; stale, ConcurrencyError at once", () =>
        Effect.gen(function*() {
          const gate = yield* makeGate(1)
          const tallies = yield* CommandHandler.make(GatedTally)
          const streamId = uniqueStream("Tally")
          const created = yield* tallies.handle(streamId, add(1), { expectedVersion: 0, correlationId: "form-1" })
            .pipe(Effect.provide(gate.layer))
          expect(created.version).toBe(1)
          const next = yield* tallies.handle(streamId, add(2), { expectedVersion: 1 }).pipe(Effect.provide(gate.layer))
          expect(next.version).toBe(2)
          const calls = yield* Ref.get(gate.calls)
          // A stale version: not decided, not retried, nothing stored.
          const stale = yield* Effect.flip(
            tallies.handle(streamId, add(3), { expectedVersion: 1 }).pipe(Effect.provide(gate.layer))
          )
          expect(stale).toMatchObject({ _tag: "ConcurrencyError", streamId, expected: 1, actual: 2 })
          const exists = yield* Effect.flip(
            tallies.handle(streamId, add(3), { expectedVersion: 0 }).pipe(Effect.provide(gate.layer))
          )
          expect(exists).toMatchObject({ _tag: "ConcurrencyError", expected: "no_stream", actual: 2 })
          expect(yield* Ref.get(gate.calls)).toBe(calls)
          const events = yield* collect((yield* EventStore).readStream(streamId))
          expect(events.map((event) => event.metadata)).toEqual([{ correlationId: "form-1" }, {}])
          const bad = yield* Effect.flip(
            tallies.handle(streamId, add(3), { expectedVersion: -1 }).pipe(Effect.provide(gate.layer))
          )
          expect(bad).toMatchObject({ _tag: "InvalidInput", field: "expectedVersion" })
        }))

      it.effect("with a caller's expected version, the loser of a race is not retried: it gets the ConcurrencyError", () =>
        Effect.gen(function*() {
          const gate = yield* makeGate(2)
          const tallies = yield* CommandHandler.make(GatedTally)
          const streamId = uniqueStream("Tally")
          const [a, b] = yield* Effect.all([
            Effect.exit(tallies.handle(streamId, add(1), { expectedVersion: 0 })),
            Effect.exit(tallies.handle(streamId, add(2), { expectedVersion: 0 }))
          ], { concurrency: "unbounded" }).pipe(Effect.provide(gate.layer))
          const failures = [a, b].flatMap((exit) =>
            Exit.isFailure(exit) ? Option.toArray(Cause.failureOption(exit.cause)) : []
          )
          expect(failures).toHaveLength(1)
          expect(failures[0]).toMatchObject({ _tag: "ConcurrencyError", streamId, expected: "no_stream", actual: 1 })
          expect(yield* Ref.get(gate.calls)).toBe(2)
          expect((yield* fullReplay(streamId)).version).toBe(1)
        }))

      it.effect("saves a snapshot whenever a command leaves the stream `every` events past the last one", () =>
        Effect.gen(function*() {
          const tallies = yield* CommandHandler.make(snapshotting(3))
          const streamId = uniqueStream("Tally")
          const versions: Array<Option.Option<ReadonlyArray<number>>> = []
          for (let i = 0; i < 4; i++) {
            yield* tallies.handle(streamId, add(1))
            versions.push(yield* snapshotVersion(streamId))
          }
          expect(versions).toEqual([Option.none(), Option.none(), Option.some([3, 1]), Option.some([3, 1])])
          // Several events in one command: one snapshot after them.
          yield* tallies.handle(streamId, { _tag: "AddMany", amounts: [1, 1, 1, 1] })
          expect(yield* snapshotVersion(streamId)).toEqual(Option.some([8, 1]))
          const loaded = yield* tallies.load(streamId)
          expect(loaded).toMatchObject({ version: 8, snapshotVersion: 8 })
          yield* tallies.handle(streamId, add(1))
          expect(yield* tallies.load(streamId)).toMatchObject({ version: 9, snapshotVersion: 8 })
          expect((yield* tallies.load(streamId)).state).toEqual((yield* fullReplay(streamId)).state)
        }))

      it.effect("snapshots on demand: with handle(…, { snapshot: true }) and handler.snapshot", () =>
        Effect.gen(function*() {
          const tallies = yield* CommandHandler.make(snapshotting(undefined))
          const streamId = uniqueStream("Tally")
          yield* tallies.handle(streamId, add(1))
          yield* tallies.handle(streamId, add(2))
          expect(yield* snapshotVersion(streamId)).toEqual(Option.none())
          yield* tallies.handle(streamId, add(3), { snapshot: true })
          expect(yield* snapshotVersion(streamId)).toEqual(Option.some([3, 1]))
          yield* tallies.handle(streamId, add(4))
          const now = yield* tallies.snapshot(streamId)
          expect(now).toMatchObject({ version: 4, snapshotVersion: 3 })
          expect(yield* snapshotVersion(streamId)).toEqual(Option.some([4, 1]))
        }))

      it.effect("a snapshot of another schema version is ignored and replaced by the next save", () =>
        Effect.gen(function*() {
          const streamId = uniqueStream("Tally")
          const v1 = yield* CommandHandler.make(snapshotting(2, 1))
          yield* v1.handle(streamId, { _tag: "AddMany", amounts: [5, 5, 5] })
          expect(yield* snapshotVersion(streamId)).toEqual(Option.some([3, 1]))
          const v2 = yield* CommandHandler.make(snapshotting(2, 2))
          expect(yield* v2.load(streamId)).toMatchObject({ version: 3, snapshotVersion: 0 })
          yield* v2.handle(streamId, add(1))
          expect(yield* snapshotVersion(streamId)).toEqual(Option.some([4, 2]))
          expect(yield* v2.load(streamId)).toMatchObject({ version: 4, snapshotVersion: 4 })
        }))

      it.effect("snapshot + tail equals a full replay, for any commands and policy (property)", () =>
        Effect.gen(function*() {
          yield* checkProperty(
            FastCheck.record({
              commands: FastCheck.array(Arbitrary.make(TallyCommand), {
                maxLength: backend.name === "memory" ? 30 : 12
              }),
              every: FastCheck.integer({ min: 1, max: 6 }),
              onDemand: FastCheck.array(FastCheck.nat({ max: 30 }), { maxLength: 3 })
            }),
            ({ commands, every, onDemand }) =>
              Effect.gen(function*() {
                const tallies = yield* CommandHandler.make(snapshotting(every))
                const streamId = uniqueStream("Tally")
                for (const [i, command] of commands.entries()) {
                  yield* Effect.either(tallies.handle(streamId, command, { snapshot: onDemand.includes(i) }))
                }
                const loaded = yield* tallies.load(streamId)
                const replayed = yield* fullReplay(streamId)
                expect({ state: loaded.state, version: loaded.version }).toEqual(replayed)
                expect(loaded.snapshotVersion).toBeLessThanOrEqual(loaded.version)
                if (replayed.version >= every) expect(loaded.snapshotVersion).toBeGreaterThan(0)
              }),
            { numRuns: backend.name === "memory" ? 50 : 15 }
          )
        }))
    })
  })
}
