/**
 * Property tests for event-sourced code, on fast-check (re-exported by
 * `effect` as `FastCheck`):
 *
 * - `invariant`: random command sequences against an aggregate, checking an
 *   invariant after every step; a failure is shrunk to a minimal sequence of
 *   commands and reported as an `InvariantViolation`;
 * - `events`: an arbitrary of a registry's events, from their schemas;
 * - `roundTrip`: every event type encodes to JSON and decodes back to an
 *   equivalent value.
 *
 * Like specifications, these are `Effect`s that plain vitest can also await.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Aggregate, EventRegistry, EventType } from "effect-event-store"
 * import { Properties } from "effect-event-store/testing"
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
 * // it("no sequence of commands overdraws an account", () => …)
 * const noOverdraft = Properties.invariant(BankAccount, {
 *   commands: BankCommand, // a Schema (through Arbitrary.make) or a FastCheck arbitrary
 *   invariant: (state) => state.balance >= 0
 * })
 *
 * Effect.runPromise(noOverdraft)
 * ```
 *
 * @since 0.1.0
 */
import * as Arbitrary from "effect/Arbitrary"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import { inspect } from "node:util"
import * as Aggregate from "../aggregate/Aggregate.js"
import * as EventRegistry from "../events/EventRegistry.js"
import type * as EventType from "../events/EventType.js"
import * as Validation from "../internal/validation/index.js"
import type { RecordedEvent } from "../RecordedEvent.js"
import { deepEquals } from "./internal/equality.js"
import { type Runnable, runnable } from "./internal/runnable.js"

/**
 * One handled command of a sequence.
 *
 * @since 0.1.0
 * @category models
 */
export interface Step<S, C, E, Err> {
  /** 0-based position of the command in the sequence. */
  readonly index: number
  readonly command: C
  /** The decided events, or the domain error that refused the command. */
  readonly outcome: Either.Either<ReadonlyArray<E>, Err>
  readonly before: S
  readonly after: S
}

/**
 * @since 0.1.0
 * @category models
 */
export interface InvariantOptions<S, C, E extends EventType.Event, Err> {
  /** Where commands come from: a `Schema` (through `Arbitrary.make`) or an arbitrary. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any encoded form
  readonly commands: Schema.Schema<C, any, never> | FastCheck.Arbitrary<C>
  /**
   * Checked after every command, refused ones included. A violation is
   * `false` or a thrown error (so `expect` works inside).
   */
  readonly invariant: (state: S, step: Step<S, C, E, Err>) => boolean | void
  /** Events that happened before every sequence. */
  readonly given?: ReadonlyArray<E> | undefined
  /** The longest sequence (default 25). */
  readonly maxCommands?: number | undefined
  /** Sequences to try (default 100). */
  readonly numRuns?: number | undefined
  /** Replays a reported failure. */
  readonly seed?: number | undefined
  readonly path?: string | undefined
}

/**
 * An invariant that did not hold, with the shortest sequence of commands that
 * fast-check could shrink the failing one to.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvariantViolation<S = unknown, C = unknown> extends Error {
  /**
   * @since 0.1.0
   */
  override readonly name = "InvariantViolation"
  constructor(
    readonly details: {
      /** The minimal failing sequence. */
      readonly commands: ReadonlyArray<C>
      /** 0-based index of the command after which the check failed. */
      readonly step: number
      /** The state after that command. */
      readonly state: S
      readonly reason: string
      readonly seed: number
      readonly path: string | undefined
      readonly numShrinks: number
      readonly cause?: unknown
    }
  ) {
    super(
      `Invariant violated after command ${details.step + 1} of this minimal sequence ` +
        `(shrunk ${details.numShrinks} times; replay with { seed: ${details.seed}, path: ${
          JSON.stringify(details.path)
        } }):\n` +
        details.commands.map((command, i) => `  ${i + 1}. ${show(command)}`).join("\n") +
        `\nstate: ${show(details.state)}\nreason: ${details.reason}`
    )
  }
}

const show = (value: unknown) => inspect(value, { depth: 6, breakLength: Infinity, compact: true })

const toArbitrary = <C>(
  source: InvariantOptions<unknown, C, EventType.Event, unknown>["commands"]
): FastCheck.Arbitrary<C> => Schema.isSchema(source) ? Arbitrary.make(source) : source as FastCheck.Arbitrary<C>

interface Failure<S> {
  readonly step: number
  readonly state: S
  readonly reason: string
  readonly cause?: unknown
}

/**
 * Runs random command sequences against `aggregate` (no store: `decide` and
 * `evolve`), checking `invariant` after every command and that every decided
 * event encodes with its schema. A refused command (domain error) leaves the
 * state unchanged and the sequence goes on. A failure dies with an
 * `InvariantViolation` carrying the minimal sequence.
 *
 * @since 0.1.0
 * @category properties
 */
export const invariant = <S, C, E extends EventType.Event, Err, R>(
  aggregate: Aggregate.Aggregate<S, C, E, Err, R>,
  options: InvariantOptions<S, C, E, Err>
): Runnable<void, R> =>
  runnable(Effect.gen(function*() {
    const runtime = yield* Effect.runtime<R>()
    const initial = Aggregate.fold(aggregate, options.given ?? [])

    // The first failure of a sequence, if any.
    const check = (commands: ReadonlyArray<C>): Effect.Effect<Option.Option<Failure<S>>, never, R> =>
      Effect.gen(function*() {
        let state = initial
        for (let index = 0; index < commands.length; index++) {
          const command = commands[index] as C
          const before = state
          const outcome = yield* Effect.either(aggregate.decide(command, before))
          if (Either.isRight(outcome)) {
            for (const event of outcome.right) {
              const encoded = yield* Effect.either(EventRegistry.encode(aggregate.events, event))
              if (Either.isLeft(encoded)) {
                return Option.some({
                  step: index,
                  state: before,
                  reason: `decided an event that does not encode: ${encoded.left.message}`,
                  cause: encoded.left
                })
              }
            }
            state = Aggregate.fold(aggregate, outcome.right, before)
          }
          const after = state
          const verdict = yield* Effect.exit(
            Effect.sync(() => options.invariant(after, { index, command, outcome, before, after }))
          )
          if (Exit.isFailure(verdict)) {
            const cause = Cause.squash(verdict.cause)
            return Option.some({
              step: index,
              state: after,
              reason: cause instanceof Error ? cause.message : show(cause),
              cause
            })
          }
          if (verdict.value === false) {
            return Option.some({ step: index, state: after, reason: "the invariant returned false" })
          }
        }
        return Option.none()
      }).pipe(
        // decide or evolve threw: a bug like any other, found and shrunk the same way.
        Effect.catchAllDefect((defect) =>
          Effect.succeed(Option.some<Failure<S>>({
            step: commands.length - 1,
            state: initial,
            reason: `decide or evolve threw: ${defect instanceof Error ? defect.message : show(defect)}`,
            cause: defect
          }))
        )
      )

    const sequences = FastCheck.array(toArbitrary(options.commands), { maxLength: options.maxCommands ?? 25 })
    const details = yield* Effect.promise(() =>
      FastCheck.check(
        FastCheck.asyncProperty(
          sequences,
          async (commands) => Option.isNone(await Runtime.runPromise(runtime)(check(commands)))
        ),
        {
          numRuns: options.numRuns ?? 100,
          ...(options.seed === undefined ? {} : { seed: options.seed }),
          ...(options.path === undefined ? {} : { path: options.path })
        }
      )
    )
    if (!details.failed) return
    if (details.counterexample === null) {
      return yield* Effect.die(new Error(`The property could not be checked: ${String(details.errorInstance ?? "")}`))
    }
    const [commands] = details.counterexample
    const failure = yield* check(commands)
    if (Option.isNone(failure)) {
      return yield* Effect.die(
        new Error(`A failing sequence passed when run again: is decide deterministic? ${show(commands)}`)
      )
    }
    return yield* Effect.die(
      new InvariantViolation({
        commands: commands.slice(0, failure.value.step + 1),
        ...failure.value,
        seed: details.seed,
        path: details.counterexamplePath ?? undefined,
        numShrinks: details.numShrinks
      })
    )
  }))

/**
 * An arbitrary of the registry's events in their current shape, each type's
 * data generated from its schema.
 *
 * @since 0.1.0
 * @category arbitraries
 */
export const events = <E extends EventType.Event>(registry: EventRegistry.EventRegistry<E>): FastCheck.Arbitrary<E> =>
  FastCheck.oneof(
    ...Array.from(registry.types.values(), (type) => Arbitrary.make(type.schema).map((data) => type.make(data) as E))
  )

/**
 * For every event type of the registry: generated data encodes, is JSON the
 * store accepts and gives back unchanged (no `NaN`, `Infinity` or `-0`, …: the
 * rules of `append`), and decodes (through `EventRegistry.decode`, as a stored
 * event of the current version) to an equivalent value (`Schema.equivalence`).
 *
 * @since 0.1.0
 * @category properties
 */
export const roundTrip = <E extends EventType.Event>(
  registry: EventRegistry.EventRegistry<E>,
  options?: { readonly numRuns?: number | undefined }
): Runnable<void, never> =>
  runnable(Effect.sync(() => {
    for (const type of registry.types.values()) {
      FastCheck.assert(
        FastCheck.property(Arbitrary.make(type.schema), (data) => {
          const encoded = ParseResult.encodeSync(type.schema)(data)
          const json = Effect.runSync(Effect.either(Validation.json("data", encoded)))
          if (Either.isLeft(json)) {
            throw new Error(`"${type.name}" encodes to data the store refuses: ${json.left.reason}`)
          }
          const stored: RecordedEvent = {
            eventId: "00000000-0000-7000-8000-000000000000",
            streamId: "round-trip",
            streamVersion: 1,
            position: 1n,
            eventType: type.name,
            schemaVersion: type.version,
            data: JSON.parse(json.right),
            metadata: {},
            recordedAt: new Date(0)
          }
          const decoded = Effect.runSync(EventRegistry.decode(registry, stored))
          return Option.isSome(decoded) && EventRegistry.isDecoded(decoded.value) &&
            deepEquals(decoded.value.data, data)
        }),
        { numRuns: options?.numRuns ?? 100 }
      )
    }
  }))
