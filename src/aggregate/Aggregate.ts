/**
 * An aggregate as a decider: an initial state, `evolve` to fold an event into
 * the state, and `decide` to turn a command and the current state into new
 * events or a typed domain error. Pure domain logic: the `CommandHandler`
 * loads, decides and appends, and the testing kit
 * (`effect-event-store/testing`) checks it with Given/When/Then and property
 * tests.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Aggregate, EventRegistry, EventType } from "effect-event-store"
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
 *   decide,
 *   // A snapshot every 50 events; a new schemaVersion when the state's shape or `evolve` changes.
 *   snapshot: { schema: Schema.Struct({ balance: Schema.Int }), schemaVersion: 1, every: 50 }
 * })
 *
 * const events = [MoneyDeposited.make({ amount: 100 }), MoneyWithdrawn.make({ amount: 30 })]
 * assert.deepStrictEqual(Aggregate.fold(BankAccount, events), { balance: 70 })
 * ```
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import type * as EventRegistry from "../events/EventRegistry.js"
import type * as EventType from "../events/EventType.js"

/**
 * When and how the command handler snapshots the state.
 *
 * @since 0.1.0
 * @category models
 */
export interface SnapshotOptions<S> {
  /** Encodes and decodes the state. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any encoded form
  readonly schema: Schema.Schema<S, any, never>
  /**
   * The version of the state's shape. Change it whenever `schema` or the
   * meaning of the state changes (including a change to `evolve`): snapshots
   * of other versions are then ignored and replaced.
   */
  readonly schemaVersion: number
  /**
   * Save a snapshot after a command that leaves the stream at least this many
   * events past the snapshot it loaded (or past the start). When absent,
   * snapshots are saved only on demand (`handle(…, { snapshot: true })` or
   * `handler.snapshot(streamId)`).
   */
  readonly every?: number | undefined
}

/**
 * A decider for commands `C` over state `S`, with the events `E` of its
 * registry. `decide` fails with the domain error `Err` (never retried) and
 * may use services `R`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Aggregate<S, C, E extends EventType.Event, Err = never, R = never> {
  /** For spans and messages. */
  readonly name: string
  readonly events: EventRegistry.EventRegistry<E>
  readonly initialState: S
  /** Folds one event into the state. Pure: the same state and event always give the same result. */
  readonly evolve: (state: S, event: E) => S
  /** The events a command produces in a state (none is fine), or why the command is refused. */
  readonly decide: (command: C, state: S) => Effect.Effect<ReadonlyArray<E>, Err, R>
  readonly snapshot: SnapshotOptions<S> | undefined
}

/**
 * An aggregate that saves snapshots: its command handler needs a
 * `SnapshotStore`.
 *
 * @since 0.1.0
 * @category models
 */
export interface WithSnapshots<S, C, E extends EventType.Event, Err = never, R = never>
  extends Aggregate<S, C, E, Err, R>
{
  readonly snapshot: SnapshotOptions<S>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface AggregateOptions<S, C, E extends EventType.Event, Err, R> {
  readonly name: string
  readonly events: EventRegistry.EventRegistry<E>
  readonly initialState: S
  readonly evolve: (state: S, event: NoInfer<E>) => S
  readonly decide: (command: C, state: NoInfer<S>) => Effect.Effect<ReadonlyArray<NoInfer<E>>, Err, R>
  readonly snapshot?: SnapshotOptions<NoInfer<S>> | undefined
}

/**
 * Declares an aggregate.
 *
 * @since 0.1.0
 * @category constructors
 */
export function make<S, C, E extends EventType.Event, Err = never, R = never>(
  options: AggregateOptions<S, C, E, Err, R> & { readonly snapshot: SnapshotOptions<NoInfer<S>> }
): WithSnapshots<S, C, E, Err, R>
export function make<S, C, E extends EventType.Event, Err = never, R = never>(
  options: AggregateOptions<S, C, E, Err, R>
): Aggregate<S, C, E, Err, R>
export function make<S, C, E extends EventType.Event, Err, R>(
  options: AggregateOptions<S, C, E, Err, R>
): Aggregate<S, C, E, Err, R> {
  const every = options.snapshot?.every
  if (every !== undefined && (!Number.isSafeInteger(every) || every < 1)) {
    throw new Error(`Aggregate "${options.name}": snapshot.every must be a positive integer, got ${every}`)
  }
  const schemaVersion = options.snapshot?.schemaVersion
  if (schemaVersion !== undefined && (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1)) {
    throw new Error(
      `Aggregate "${options.name}": snapshot.schemaVersion must be a positive integer, got ${schemaVersion}`
    )
  }
  return {
    name: options.name,
    events: options.events,
    initialState: options.initialState,
    evolve: options.evolve,
    decide: options.decide,
    snapshot: options.snapshot
  }
}

/**
 * The state after `events`, from `state` (default the initial state).
 *
 * @since 0.1.0
 * @category folding
 */
export const fold = <S, C, E extends EventType.Event, Err, R>(
  aggregate: Aggregate<S, C, E, Err, R>,
  events: Iterable<E>,
  state: S = aggregate.initialState
): S => {
  let current = state
  for (const event of events) current = aggregate.evolve(current, event)
  return current
}
