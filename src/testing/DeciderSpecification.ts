/**
 * Given/When/Then specifications for aggregates: given the events that
 * happened, when a command arrives, then these events are decided — or this
 * error. No store is involved: the events are folded with `evolve` and the
 * command goes to `decide`.
 *
 * A specification is an `Effect` for `@effect/vitest` and, when `decide`
 * needs no services, also a promise for plain vitest.
 *
 * Decided events are compared by their encoded form (what the store would
 * hold), and each must encode with its current schema.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Aggregate, EventRegistry, EventType } from "effect-event-store"
 * import { DeciderSpecification } from "effect-event-store/testing"
 *
 * const MoneyDeposited = EventType.make("MoneyDeposited", { schema: Schema.Struct({ amount: Schema.Int }) })
 * const MoneyWithdrawn = EventType.make("MoneyWithdrawn", { schema: Schema.Struct({ amount: Schema.Int }) })
 * const BankEvents = EventRegistry.make(MoneyDeposited, MoneyWithdrawn)
 * type BankEvent = EventRegistry.Event<typeof BankEvents>
 *
 * const Amount = Schema.Int.pipe(Schema.positive())
 * const Deposit = Schema.TaggedStruct("Deposit", { amount: Amount })
 * const Withdraw = Schema.TaggedStruct("Withdraw", { amount: Amount })
 * const BankCommand = Schema.Union(Deposit, Withdraw)
 *
 * class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
 *   balance: Schema.Int
 * }) {}
 *
 * const decide = (
 *   command: typeof BankCommand.Type,
 *   state: { readonly balance: number }
 * ): Effect.Effect<ReadonlyArray<BankEvent>, InsufficientFunds> =>
 *   command._tag === "Deposit"
 *     ? Effect.succeed([MoneyDeposited.make({ amount: command.amount })])
 *     : command.amount > state.balance
 *     ? Effect.fail(new InsufficientFunds({ balance: state.balance }))
 *     : Effect.succeed([MoneyWithdrawn.make({ amount: command.amount })])
 *
 * const BankAccount = Aggregate.make({
 *   name: "BankAccount",
 *   events: BankEvents,
 *   initialState: { balance: 0 },
 *   evolve: (state, event) =>
 *     event.type === "MoneyDeposited"
 *       ? { balance: state.balance + event.data.amount }
 *       : { balance: state.balance - event.data.amount },
 *   decide
 * })
 *
 * const given = DeciderSpecification.make(BankAccount).given
 *
 * // it("a deposit is credited", () => …) in plain vitest, it.effect in @effect/vitest
 * const credited = given([MoneyDeposited.make({ amount: 50 })])
 *   .when(Deposit.make({ amount: 100 }))
 *   .then([MoneyDeposited.make({ amount: 100 })])
 *
 * // it("an overdraft is refused", () => …)
 * const refused = given([]).when(Withdraw.make({ amount: 1 })).thenFails(new InsufficientFunds({ balance: 0 }))
 *
 * Promise.all([credited, refused])
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import { inspect } from "node:util"
import type * as Aggregate from "../aggregate/Aggregate.js"
import type { EventData } from "../EventData.js"
import * as EventRegistry from "../events/EventRegistry.js"
import type * as EventType from "../events/EventType.js"
import { deepEquals } from "./internal/equality.js"
import { type Runnable, runnable } from "./internal/runnable.js"

/**
 * A specification that did not hold. `actual` and `expected` let test runners
 * show a diff.
 *
 * @since 0.1.0
 * @category errors
 */
export class SpecificationError extends Error {
  /**
   * @since 0.1.0
   */
  override readonly name = "SpecificationError"
  /**
   * Whether a test runner should show a diff of `actual` and `expected`.
   *
   * @since 0.1.0
   */
  readonly showDiff: boolean
  constructor(message: string, readonly actual?: unknown, readonly expected?: unknown) {
    super(message)
    this.showDiff = actual !== undefined || expected !== undefined
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Then<E extends EventType.Event, Err, R> {
  /** `decide` returns exactly these events (none: `then([])`). */
  readonly then: (expected: ReadonlyArray<E>) => Runnable<void, R>
  /**
   * `decide` fails with an error equal to `expected` (`Equal.equals`, which
   * compares `Schema.TaggedError` and `Data.TaggedError` values by their
   * fields), or one for which `expected` returns `true` or nothing (it may
   * throw, as `expect` does).
   */
  readonly thenFails: (expected: Err | ((error: Err) => boolean | void)) => Runnable<void, R>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface When<C, E extends EventType.Event, Err, R> {
  readonly when: (command: C) => Then<E, Err, R>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DeciderSpecification<C, E extends EventType.Event, Err, R> extends When<C, E, Err, R> {
  /** The events that happened before the command. */
  readonly given: (events: ReadonlyArray<E>) => When<C, E, Err, R>
}

const show = (value: unknown) => inspect(value, { depth: 8, breakLength: 120 })

const encodeAll = <E extends EventType.Event>(
  registry: EventRegistry.EventRegistry<E>,
  events: ReadonlyArray<E>,
  which: string
): Effect.Effect<ReadonlyArray<EventData>> =>
  Effect.forEach(events, (event, i) =>
    EventRegistry.encode(registry, event, `${which}[${i}]`).pipe(
      Effect.orDieWith((error) =>
        new SpecificationError(`The ${which} event ${i + 1} (${String(event?.type)}) does not encode: ${error.message}`)
      )
    ))

/**
 * Specifications for `aggregate`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <S, C, E extends EventType.Event, Err, R>(
  aggregate: Aggregate.Aggregate<S, C, E, Err, R>
): DeciderSpecification<C, E, Err, R> => {
  const given = (history: ReadonlyArray<E>): When<C, E, Err, R> => ({
    when: (command) => {
      const decided = Effect.suspend(() => {
        const state = history.reduce(aggregate.evolve, aggregate.initialState)
        return Effect.either(aggregate.decide(command, state))
      })
      return {
        then: (expected) =>
          runnable(Effect.gen(function*() {
            const outcome = yield* decided
            if (Either.isLeft(outcome)) {
              return yield* Effect.die(
                new SpecificationError(
                  `Expected the command to decide ${expected.length} event(s), but it failed with ${
                    show(outcome.left)
                  }`,
                  outcome.left,
                  expected
                )
              )
            }
            const actual = outcome.right
            const [actualData, expectedData] = [
              yield* encodeAll(aggregate.events, actual, "decided"),
              yield* encodeAll(aggregate.events, expected, "expected")
            ]
            const same = actualData.length === expectedData.length &&
              actualData.every((event, i) => {
                const other = expectedData[i]
                return other !== undefined && event.eventType === other.eventType && deepEquals(event.data, other.data)
              })
            if (!same) {
              return yield* Effect.die(
                new SpecificationError(`The decided events differ from the expected ones`, actual, expected)
              )
            }
          })),
        thenFails: (expected) =>
          runnable(Effect.gen(function*() {
            const outcome = yield* decided
            if (Either.isRight(outcome)) {
              return yield* Effect.die(
                new SpecificationError(
                  `Expected the command to fail, but it decided ${show(outcome.right)}`,
                  outcome.right,
                  expected
                )
              )
            }
            const error = outcome.left
            if (typeof expected === "function") {
              const verdict = yield* Effect.sync(() => (expected as (error: Err) => boolean | void)(error))
              if (verdict === false) {
                return yield* Effect.die(
                  new SpecificationError(
                    `The command failed with an error that does not satisfy the predicate: ${show(error)}`,
                    error
                  )
                )
              }
            } else if (!Equal.equals(error, expected)) {
              return yield* Effect.die(
                new SpecificationError(`The command failed with another error than expected`, error, expected)
              )
            }
          }))
      }
    }
  })
  return { given, when: given([]).when }
}
