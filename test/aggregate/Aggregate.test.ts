/**
 * Declaring aggregates, folding, the correlation context, and what the types
 * promise: a handler needs a SnapshotStore exactly when its aggregate saves
 * snapshots.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as Aggregate from "../../src/aggregate/Aggregate.js"
import * as CommandHandler from "../../src/aggregate/CommandHandler.js"
import * as Correlation from "../../src/aggregate/Correlation.js"
import type { EventStore } from "../../src/EventStore.js"
import type { SnapshotStore } from "../../src/SnapshotStore.js"
import { Added, Cleared, decide, evolve, initialState, snapshotting, Tally, TallyEvents, TallyState } from "./tally.js"

describe("Aggregate", () => {
  it("folds events into the state, from the initial state or a given one", () => {
    const events = [Added.make({ amount: 2 }), Added.make({ amount: 3 }), Cleared.make({}), Added.make({ amount: 4 })]
    expect(Aggregate.fold(Tally, events)).toEqual({
      total: 4,
      entries: 4,
      checksum: ((((2 * 31 + 3) * 31 + 7) * 31) + 4) % 1_000_003
    })
    expect(Aggregate.fold(Tally, [], { total: 9, entries: 1, checksum: 9 })).toEqual({
      total: 9,
      entries: 1,
      checksum: 9
    })
  })

  it("refuses snapshot options that cannot be right, when declared", () => {
    const declare = (snapshot: Aggregate.SnapshotOptions<TallyState>) => () =>
      Aggregate.make({ name: "Bad", events: TallyEvents, initialState, evolve, decide, snapshot })
    expect(declare({ schema: TallyState, schemaVersion: 1, every: 0 })).toThrow(
      `Aggregate "Bad": snapshot.every must be a positive integer, got 0`
    )
    expect(declare({ schema: TallyState, schemaVersion: 0 })).toThrow(
      `Aggregate "Bad": snapshot.schemaVersion must be a positive integer, got 0`
    )
  })

  it("a command handler needs a SnapshotStore exactly when the aggregate saves snapshots", () => {
    const requirements = <A, E, R>(_: Effect.Effect<A, E, R>) => expectTypeOf<R>()
    requirements(CommandHandler.make(Tally)).toEqualTypeOf<EventStore>()
    requirements(CommandHandler.make(snapshotting(10))).toEqualTypeOf<EventStore | SnapshotStore>()
  })
})

describe("Correlation", () => {
  it.effect("is empty by default, set around an effect, merged with the outer one, and inherited by child fibers", () =>
    Effect.gen(function*() {
      expect(yield* Correlation.current).toEqual({})
      const inner = yield* Effect.gen(function*() {
        const fiber = yield* Effect.fork(Correlation.current)
        return [yield* Correlation.current, yield* Fiber.join(fiber)]
      }).pipe(
        Correlation.withCorrelation({ causationId: "message-2" }),
        Correlation.withCorrelation({ correlationId: "request-1", causationId: "message-1" })
      )
      expect(inner).toEqual([
        { correlationId: "request-1", causationId: "message-2" },
        { correlationId: "request-1", causationId: "message-2" }
      ])
      expect(yield* Correlation.current).toEqual({})
    }))

  it("as metadata, only the ids that are set", () => {
    expect(Correlation.toMetadata({ correlationId: "c", causationId: undefined })).toEqual({ correlationId: "c" })
    expect(Correlation.merge({ correlationId: "a", causationId: "b" }, { correlationId: undefined, causationId: "x" }))
      .toEqual({ correlationId: "a", causationId: "x" })
  })
})
