/**
 * Property tests over random command sequences: a correct aggregate passes,
 * a deliberately buggy one is caught and its failing sequence shrunk to a
 * minimal one (removing any command makes the invariant hold again).
 */
import { describe, expect, it as effectIt } from "@effect/vitest"
import { Arbitrary, Cause, Effect, Exit, FastCheck, Layer, Option } from "effect"
import { it } from "vitest"
import * as Aggregate from "../../src/aggregate/Aggregate.js"
import { Properties } from "../../src/testing/index.js"
import {
  Added,
  decide,
  evolve,
  Gate,
  GatedTally,
  initialState,
  limit,
  Tally,
  type TallyCommand,
  TallyCommand as TallyCommandSchema,
  TallyEvents,
  TooMuch
} from "./tally.js"

/** Add checks the total before the addition instead of after it: a tally can end up over the limit. */
const BuggyTally = Aggregate.make({
  name: "BuggyTally",
  events: TallyEvents,
  initialState,
  evolve,
  decide: (command: TallyCommand, state: typeof initialState) =>
    command._tag === "Add"
      ? state.total > limit
        ? Effect.fail(new TooMuch({ total: state.total, amount: command.amount }))
        : Effect.succeed([Added.make({ amount: command.amount })])
      : decide(command, state)
})

const withinLimit = (state: typeof initialState) => state.total >= 0 && state.total <= limit

const violationOf = async (runnable: PromiseLike<void>) => {
  const outcome = await Promise.resolve(runnable).then(() => undefined, (error: unknown) => error)
  expect(outcome).toBeInstanceOf(Properties.InvariantViolation)
  return outcome as Properties.InvariantViolation<typeof initialState, TallyCommand>
}

describe("Properties.invariant", () => {
  it("a correct aggregate keeps its invariant over random command sequences", () =>
    Properties.invariant(Tally, { commands: TallyCommandSchema, invariant: withinLimit }))

  it("commands can come from a user-supplied arbitrary, with events given beforehand", () =>
    Properties.invariant(Tally, {
      commands: FastCheck.constantFrom<TallyCommand>({ _tag: "Add", amount: 100 }, { _tag: "Clear" }),
      given: [Added.make({ amount: 950 })],
      invariant: (state, step) => {
        expect(state.total).toBeLessThanOrEqual(limit)
        if (step.command._tag === "Clear") expect(state.total).toBe(0)
      },
      maxCommands: 40,
      numRuns: 50
    }))

  it("a buggy aggregate is caught, and the failing sequence shrunk to a minimal one", async () => {
    const violation = await violationOf(
      Properties.invariant(BuggyTally, { commands: TallyCommandSchema, invariant: withinLimit, numRuns: 500, seed: 7 })
    )
    const { commands, state, step } = violation.details
    expect(state.total).toBeGreaterThan(limit)
    expect(step).toBe(commands.length - 1)
    expect(commands.at(-1)?._tag).toBe("Add")
    expect(violation.details.numShrinks).toBeGreaterThan(0)
    expect(violation.message).toMatch(/^Invariant violated after command \d+ of this minimal sequence/)
    expect(violation.message).toMatch(/replay with \{ seed: 7, path: "[\d:]+" \}/)
    // Minimal: without any one of its commands, the sequence keeps the invariant.
    const final = (sequence: ReadonlyArray<TallyCommand>) =>
      sequence.reduce((state, command) =>
        Exit.match(Effect.runSyncExit(BuggyTally.decide(command, state)), {
          onFailure: () => state,
          onSuccess: (events) => Aggregate.fold(BuggyTally, events, state)
        }), initialState)
    expect(withinLimit(final(commands))).toBe(false)
    for (let i = 0; i < commands.length; i++) {
      expect(withinLimit(final(commands.filter((_, j) => j !== i)))).toBe(true)
    }
  })

  it("the reported seed and path replay the same failure", async () => {
    const first = await violationOf(
      Properties.invariant(BuggyTally, { commands: TallyCommandSchema, invariant: withinLimit, numRuns: 500, seed: 7 })
    )
    const again = await violationOf(Properties.invariant(BuggyTally, {
      commands: TallyCommandSchema,
      invariant: withinLimit,
      seed: first.details.seed,
      path: first.details.path
    }))
    expect(again.details.commands).toEqual(first.details.commands)
  })

  it("a decider that decides an event its schema refuses is caught", async () => {
    const Sloppy = Aggregate.make({
      name: "Sloppy",
      events: TallyEvents,
      initialState,
      evolve,
      decide: (command: TallyCommand, state: typeof initialState) =>
        command._tag === "Clear" ? Effect.succeed([Added.make({ amount: 0 })]) : decide(command, state)
    })
    const violation = await violationOf(
      Properties.invariant(Sloppy, { commands: TallyCommandSchema, invariant: () => true })
    )
    expect(violation.details.commands).toEqual([{ _tag: "Clear" }])
    expect(violation.details.reason).toMatch(/^decided an event that does not encode: /)
  })

  it("a decider or evolve that throws is caught and shrunk like any failure", async () => {
    const Throwing = Aggregate.make({
      name: "Throwing",
      events: TallyEvents,
      initialState,
      evolve: (state: typeof initialState, event) => {
        if (event.type === "Cleared" && state.total > 0) throw new Error("cannot clear a non-empty tally")
        return evolve(state, event)
      },
      decide
    })
    const violation = await violationOf(
      Properties.invariant(Throwing, { commands: TallyCommandSchema, invariant: () => true })
    )
    expect(violation.details.reason).toBe("decide or evolve threw: cannot clear a non-empty tally")
    expect(violation.details.commands.map((command) => command._tag)).toEqual([
      violation.details.commands[0]?._tag === "Add" ? "Add" : "AddMany",
      "Clear"
    ])
  })

  effectIt.effect(
    "in @effect/vitest, with a decider that needs services",
    () =>
      Properties.invariant(GatedTally, { commands: TallyCommandSchema, invariant: withinLimit, numRuns: 30 }).pipe(
        Effect.provide(Layer.succeed(Gate, Effect.void))
      )
  )

  effectIt.effect(
    "in @effect/vitest, a violation is a defect carrying the InvariantViolation",
    () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(
          Properties.invariant(BuggyTally, {
            commands: TallyCommandSchema,
            invariant: withinLimit,
            numRuns: 500,
            seed: 7
          })
        )
        expect(Exit.isFailure(exit) && Cause.squash(exit.cause)).toBeInstanceOf(Properties.InvariantViolation)
      })
  )
})

describe("Properties.events", () => {
  it("generates every event type of a registry, in the current shape", () => {
    const samples = FastCheck.sample(Properties.events(TallyEvents), 200)
    expect(new Set(samples.map((event) => event.type))).toEqual(new Set(["Added", "Cleared"]))
    for (const event of samples) {
      expect(Option.isSome(Option.liftPredicate(event, (e) => TallyEvents.types.has(e.type)))).toBe(true)
    }
    expect(FastCheck.sample(Arbitrary.make(TallyCommandSchema), 5)).toHaveLength(5)
  })
})
