/**
 * A small aggregate for the command handler's tests: a tally of amounts. Its
 * state keeps an order-sensitive checksum of every event, so two states are
 * equal only if they saw the same events in the same order.
 */
import { Context, Effect, Schema } from "effect"
import * as Aggregate from "../../src/aggregate/Aggregate.js"
import * as EventRegistry from "../../src/events/EventRegistry.js"
import * as EventType from "../../src/events/EventType.js"

export const Added = EventType.make("Added", {
  schema: Schema.Struct({ amount: Schema.Int.pipe(Schema.between(1, 100)) })
})
export const Cleared = EventType.make("Cleared", { schema: Schema.Struct({}) })
export const TallyEvents = EventRegistry.make(Added, Cleared)
export type TallyEvent = EventRegistry.Event<typeof TallyEvents>

export const Amount = Schema.Int.pipe(Schema.between(1, 100))
export const TallyCommand = Schema.Union(
  Schema.TaggedStruct("Add", { amount: Amount }),
  Schema.TaggedStruct("AddMany", { amounts: Schema.Array(Amount) }),
  Schema.TaggedStruct("Clear", {}),
  Schema.TaggedStruct("Nothing", {})
)
export type TallyCommand = typeof TallyCommand.Type

export const TallyState = Schema.Struct({ total: Schema.Int, entries: Schema.Int, checksum: Schema.Int })
export type TallyState = typeof TallyState.Type

export class TooMuch extends Schema.TaggedError<TooMuch>()("TooMuch", { total: Schema.Int, amount: Schema.Int }) {}

/** The most a tally holds. */
export const limit = 1_000

export const evolve = (state: TallyState, event: TallyEvent): TallyState => {
  const entries = state.entries + 1
  switch (event.type) {
    case "Added":
      return {
        total: state.total + event.data.amount,
        entries,
        checksum: (state.checksum * 31 + event.data.amount) % 1_000_003
      }
    case "Cleared":
      return { total: 0, entries, checksum: (state.checksum * 31 + 7) % 1_000_003 }
  }
}

export const decide = (command: TallyCommand, state: TallyState): Effect.Effect<ReadonlyArray<TallyEvent>, TooMuch> => {
  switch (command._tag) {
    case "Add":
      return state.total + command.amount > limit
        ? Effect.fail(new TooMuch({ total: state.total, amount: command.amount }))
        : Effect.succeed([Added.make({ amount: command.amount })])
    case "AddMany": {
      const amount = command.amounts.reduce((sum, n) => sum + n, 0)
      return state.total + amount > limit
        ? Effect.fail(new TooMuch({ total: state.total, amount }))
        : Effect.succeed(command.amounts.map((amount) => Added.make({ amount })))
    }
    case "Clear":
      return Effect.succeed([Cleared.make({})])
    case "Nothing":
      return Effect.succeed([])
  }
}

export const initialState: TallyState = { total: 0, entries: 0, checksum: 0 }

/** Without snapshots. */
export const Tally = Aggregate.make({ name: "Tally", events: TallyEvents, initialState, evolve, decide })

/** With a snapshot every `every` events (on demand only when undefined). */
export const snapshotting = (every: number | undefined, schemaVersion = 1) =>
  Aggregate.make({
    name: "Tally",
    events: TallyEvents,
    initialState,
    evolve,
    decide,
    snapshot: { schema: TallyState, schemaVersion, every }
  })

/** Every call of `decide` waits here: tests use it to make commands race. */
export class Gate extends Context.Tag("test/Gate")<Gate, Effect.Effect<void>>() {}

export const GatedTally = Aggregate.make({
  name: "GatedTally",
  events: TallyEvents,
  initialState,
  evolve,
  decide: (command: TallyCommand, state: TallyState) => Effect.zipRight(Effect.flatten(Gate), decide(command, state))
})
