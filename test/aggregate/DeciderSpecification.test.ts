/**
 * Given/When/Then specifications, in plain vitest (a promise) and in
 * @effect/vitest (an Effect), and what they report when they do not hold.
 */
import { describe, expect, it as effectIt } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import { it } from "vitest"
import * as Aggregate from "../../src/aggregate/Aggregate.js"
import { DeciderSpecification } from "../../src/testing/index.js"
import { Added, Cleared, evolve, Gate, GatedTally, initialState, Tally, TallyEvents, TooMuch } from "./tally.js"

const spec = DeciderSpecification.make(Tally)
const { given } = spec

/** The error a failed specification rejects with. */
const rejection = (runnable: PromiseLike<void>) =>
  Promise.resolve(runnable).then(
    () => {
      throw new Error("the specification held")
    },
    (error: unknown) => error as DeciderSpecification.SpecificationError
  )

describe("DeciderSpecification in plain vitest", () => {
  it("given events, when a command, then the decided events", () =>
    given([Added.make({ amount: 10 })]).when({ _tag: "Add", amount: 5 }).then([Added.make({ amount: 5 })]))

  it("when a command with no history", () => spec.when({ _tag: "Clear" }).then([Cleared.make({})]))

  it("then nothing", () => given([]).when({ _tag: "Nothing" }).then([]))

  it("then an error, compared by value", () =>
    given([Added.make({ amount: 100 })]).when({
      _tag: "AddMany",
      amounts: [100, 100, 100, 100, 100, 100, 100, 100, 100, 100]
    })
      .thenFails(new TooMuch({ total: 100, amount: 1_000 })))

  it("then an error, checked by a predicate (which may use expect)", () =>
    given([]).when({ _tag: "AddMany", amounts: Array.from({ length: 11 }, () => 100) }).thenFails((error) => {
      expect(error).toBeInstanceOf(TooMuch)
      expect(error.amount).toBe(1_100)
    }))

  // Returned, the specification is awaited by vitest: one that does not hold fails the test.
  it.fails("a specification that does not hold fails the test", () =>
    given([]).when({ _tag: "Add", amount: 2 }).then([Added.make({ amount: 3 })]))

  it("can be awaited", async () => {
    await given([]).when({ _tag: "Add", amount: 1 }).then([Added.make({ amount: 1 })])
  })
})

describe("DeciderSpecification with @effect/vitest", () => {
  effectIt.effect(
    "is an Effect",
    () => given([Added.make({ amount: 1 })]).when({ _tag: "Add", amount: 2 }).then([Added.make({ amount: 2 })])
  )

  effectIt.effect("composes with other effects", () =>
    Effect.gen(function*() {
      yield* given([]).when({ _tag: "Clear" }).then([Cleared.make({})])
      yield* given([Added.make({ amount: 1_000 })]).when({ _tag: "Add", amount: 1 }).thenFails(
        new TooMuch({ total: 1_000, amount: 1 })
      )
    }))

  effectIt.effect(
    "runs deciders that need services, given them",
    () =>
      DeciderSpecification.make(GatedTally).given([]).when({ _tag: "Add", amount: 3 }).then([Added.make({ amount: 3 })])
        .pipe(
          Effect.provide(Layer.succeed(Gate, Effect.void))
        )
  )

  effectIt.effect("a specification that does not hold dies with the SpecificationError", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(given([]).when({ _tag: "Add", amount: 2 }).then([Added.make({ amount: 3 })]))
      const defect = Exit.isFailure(exit) ? Cause.squash(exit.cause) : undefined
      expect(defect).toBeInstanceOf(DeciderSpecification.SpecificationError)
    }))
})

describe("what a specification that does not hold reports", () => {
  it("other events: a diff of actual against expected", async () => {
    const error = await rejection(given([]).when({ _tag: "Add", amount: 2 }).then([Added.make({ amount: 3 })]))
    expect(error).toBeInstanceOf(DeciderSpecification.SpecificationError)
    expect(error.message).toBe("The decided events differ from the expected ones")
    expect(error.actual).toEqual([Added.make({ amount: 2 })])
    expect(error.expected).toEqual([Added.make({ amount: 3 })])
    expect(error.showDiff).toBe(true)
  })

  it("a failure where events were expected", async () => {
    const error = await rejection(given([Added.make({ amount: 1_000 })]).when({ _tag: "Add", amount: 1 }).then([]))
    expect(error.message).toMatch(/^Expected the command to decide 0 event\(s\), but it failed with TooMuch/)
    expect(error.actual).toEqual(new TooMuch({ total: 1_000, amount: 1 }))
  })

  it("events where a failure was expected", async () => {
    const error = await rejection(given([]).when({ _tag: "Clear" }).thenFails(new TooMuch({ total: 0, amount: 0 })))
    expect(error.message).toMatch(/^Expected the command to fail, but it decided/)
  })

  it("another error than expected", async () => {
    const error = await rejection(
      given([Added.make({ amount: 1_000 })]).when({ _tag: "Add", amount: 1 }).thenFails(
        new TooMuch({ total: 1_000, amount: 2 })
      )
    )
    expect(error.message).toBe("The command failed with another error than expected")
  })

  it("a predicate that returns false", async () => {
    const error = await rejection(
      given([Added.make({ amount: 1_000 })]).when({ _tag: "Add", amount: 1 }).thenFails((e) => e.amount === 2)
    )
    expect(error.message).toMatch(/does not satisfy the predicate/)
  })

  it("a decided event that its schema refuses (the store would refuse it too)", async () => {
    const Sloppy = Aggregate.make({
      name: "Sloppy",
      events: TallyEvents,
      initialState,
      evolve,
      decide: (command: { readonly amount: number }) => Effect.succeed([Added.make({ amount: command.amount })])
    })
    const error = await rejection(
      DeciderSpecification.make(Sloppy).when({ amount: 0 }).then([Added.make({ amount: 0 })])
    )
    expect(error.message).toMatch(/^The decided event 1 \(Added\) does not encode: Invalid decided\[0\]\.data: /)
  })
})
