/**
 * Runs commands against an aggregate stored in the event store: load the
 * state (the latest snapshot and the events after it), decide, append the new
 * events at the version it loaded, and, when another writer got there first
 * (`ConcurrencyError`), start again from a fresh load on a `Schedule`.
 * Snapshots are saved by the aggregate's policy; correlation and causation ids
 * go into every event's metadata.
 *
 * An aggregate's state is the fold of the events `readStream` returns, and its
 * version is the stream's version (docs/aggregates.md): events the stream's
 * metadata hides, or a soft delete removed, are not part of it, and a snapshot
 * is used only while it summarises exactly the events the stream still shows.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Aggregate, CommandHandler, EventRegistry, EventType } from "effect-event-store"
 * import { MemoryEventStore } from "effect-event-store/memory"
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
 * const program = Effect.gen(function*() {
 *   const accounts = yield* CommandHandler.make(BankAccount)
 *   yield* accounts.handle("Account-1", Deposit.make({ amount: 100 }), { correlationId: "req-42" })
 *   const { state, version } = yield* accounts.handle("Account-1", Withdraw.make({ amount: 30 }))
 *   return { state, version }
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(MemoryEventStore.layer()))).then((result) =>
 *   assert.deepStrictEqual(result, { state: { balance: 70 }, version: 2 })
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import {
  ConcurrencyError,
  type EventDecodeError,
  InvalidInput,
  type StoreError,
  type StreamDeleted
} from "../Errors.js"
import type { EventMetadata } from "../EventData.js"
import type * as EventType from "../events/EventType.js"
import * as TypedEventStore from "../events/TypedEventStore.js"
import type { AppendError, EventStore } from "../EventStore.js"
import { isCurrent, loadSnapshot, saveSnapshot, SnapshotStore } from "../SnapshotStore.js"
import * as Aggregate from "./Aggregate.js"
import * as Correlation from "./Correlation.js"

/**
 * An aggregate's state as loaded from the store.
 *
 * @since 0.1.0
 * @category models
 */
export interface Loaded<S> {
  /** The fold of the events `readStream` returns (the initial state when it returns none). */
  readonly state: S
  /**
   * The stream's version, hidden events included (0: no events yet, or
   * soft-deleted): the expected version of the next append.
   */
  readonly version: number
  /** The version of the snapshot the state started from (0: none, a full replay). */
  readonly snapshotVersion: number
}

/**
 * What handling a command did.
 *
 * @since 0.1.0
 * @category models
 */
export interface Handled<S, E> {
  readonly streamId: string
  /** The events appended (none when the command changed nothing). */
  readonly events: ReadonlyArray<E>
  /** The state after the events. */
  readonly state: S
  /** The stream's version after the append. */
  readonly version: number
  /** The global positions of the appended events. */
  readonly positions: ReadonlyArray<bigint>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HandleOptions extends Correlation.Correlation {
  /** Extra metadata for every event (an event's own metadata wins). */
  readonly metadata?: EventMetadata | undefined
  /** Save a snapshot after this command, whatever the policy (needs `snapshot` options on the aggregate). */
  readonly snapshot?: boolean | undefined
  /**
   * The stream version the caller decided on (an HTTP `If-Match`, a form's
   * hidden field; 0: the stream must not exist yet). When the stream is at
   * another version, or moves before the append, the command fails with
   * `ConcurrencyError` (expected: this version, actual: the stream's) and is
   * not retried: the caller's view is stale, and only the caller can decide
   * again. Correlation, metadata and the snapshot policy apply as usual.
   *
   * @since 0.2.0
   */
  readonly expectedVersion?: number | undefined
}

/**
 * Errors of loading: reading the snapshot or the stream, or decoding an event.
 *
 * @since 0.1.0
 * @category models
 */
export type LoadError = InvalidInput | StoreError | EventDecodeError | StreamDeleted

/**
 * @since 0.1.0
 * @category models
 */
export interface CommandHandler<S, C, E extends EventType.Event, Err, R> {
  readonly aggregate: Aggregate.Aggregate<S, C, E, Err, R>
  /** The current state: the latest snapshot that is still current, then the events after it. */
  readonly load: (streamId: string) => Effect.Effect<Loaded<S>, LoadError>
  /**
   * Loads, decides and appends at the loaded version. A `ConcurrencyError` is
   * retried (from a fresh load) on the handler's schedule and returned only
   * once the schedule gives up; a domain error `Err` is returned at once.
   */
  readonly handle: (
    streamId: string,
    command: C,
    options?: HandleOptions
  ) => Effect.Effect<Handled<S, E>, Err | LoadError | AppendError, R>
  /** Saves a snapshot of the stream's current state now (on demand). */
  readonly snapshot: (streamId: string) => Effect.Effect<Loaded<S>, LoadError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CommandHandlerOptions {
  /**
   * How to retry after a `ConcurrencyError` (each retry loads and decides
   * again). Default: `defaultRetry`. `Schedule.stop` never retries.
   */
  readonly retry?: Schedule.Schedule<unknown, ConcurrencyError> | undefined
  /** What loading does with events whose type is not in the aggregate's registry (default `"fail"`). */
  readonly unknownEvents?: "fail" | "skip" | undefined
}

/**
 * A few quick retries: up to 5, after about 5, 10, 20, 40 and 80 ms (jittered).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRetry: Schedule.Schedule<unknown, ConcurrencyError> = Schedule.exponential("5 millis").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(5))
)

const isConcurrencyError = (error: unknown): error is ConcurrencyError =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "ConcurrencyError"

/**
 * A command handler for `aggregate` over the `EventStore` in context (and the
 * `SnapshotStore`, when the aggregate saves snapshots).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: {
  <S, C, E extends EventType.Event, Err, R>(
    aggregate: Aggregate.WithSnapshots<S, C, E, Err, R>,
    options?: CommandHandlerOptions
  ): Effect.Effect<CommandHandler<S, C, E, Err, R>, never, EventStore | SnapshotStore>
  <S, C, E extends EventType.Event, Err, R>(
    aggregate: Aggregate.Aggregate<S, C, E, Err, R>,
    options?: CommandHandlerOptions
  ): Effect.Effect<CommandHandler<S, C, E, Err, R>, never, EventStore>
} = <S, C, E extends EventType.Event, Err, R>(
  aggregate: Aggregate.Aggregate<S, C, E, Err, R>,
  options?: CommandHandlerOptions
): Effect.Effect<CommandHandler<S, C, E, Err, R>, never, EventStore> =>
  Effect.gen(function*() {
    const store = yield* TypedEventStore.make(aggregate.events, { unknownEvents: options?.unknownEvents ?? "fail" })
    const retry = options?.retry ?? defaultRetry
    const snapshotOptions = aggregate.snapshot
    const snapshots = yield* Effect.serviceOption(SnapshotStore)
    if (snapshotOptions !== undefined && Option.isNone(snapshots)) {
      return yield* Effect.dieMessage(
        `Aggregate "${aggregate.name}" saves snapshots, but no SnapshotStore is provided to its command handler`
      )
    }
    const withSnapshots = <A, E1>(effect: Effect.Effect<A, E1, SnapshotStore>) =>
      Option.match(snapshots, {
        onNone: () => Effect.dieMessage(`Aggregate "${aggregate.name}" has no snapshot options`),
        onSome: (service) => Effect.provideService(effect, SnapshotStore, service)
      })

    // The view's first version and epoch say what the state was folded from:
    // a snapshot of it records them, and is used only while they still hold.
    interface Folded extends Loaded<S> {
      readonly firstVersion: number
      readonly epoch: number
    }

    const loadFolded = (streamId: string): Effect.Effect<Folded, LoadError> =>
      Effect.gen(function*() {
        // Two independent reads: at once, so a load waits for one round trip before the events.
        const [snapshot, view] = yield* Effect.all([
          snapshotOptions === undefined
            ? Effect.succeed(Option.none())
            : withSnapshots(loadSnapshot(streamId, snapshotOptions)),
          store.viewStream(streamId)
        ], { concurrency: 2 })
        const start = Option.filter(snapshot, (stored) => isCurrent(stored, view))
        const state = yield* view.events(Option.isSome(start) ? { from: start.value.version + 1 } : undefined).pipe(
          Stream.runFold(
            Option.match(start, { onNone: () => aggregate.initialState, onSome: (stored) => stored.state }),
            (state, event) => aggregate.evolve(state, event as unknown as E)
          )
        )
        return {
          state,
          version: view.version,
          snapshotVersion: Option.match(start, { onNone: () => 0, onSome: (stored) => stored.version }),
          firstVersion: view.firstVersion,
          epoch: view.epoch
        }
      }).pipe(Effect.withSpan("CommandHandler.load", { attributes: { aggregate: aggregate.name, streamId } }))

    const load = (streamId: string): Effect.Effect<Loaded<S>, LoadError> =>
      Effect.map(loadFolded(streamId), ({ snapshotVersion, state, version }) => ({ state, version, snapshotVersion }))

    // Saved with what the state was folded from: the loaded view's first version and epoch.
    const save = (streamId: string, from: Folded, version: number, state: S) =>
      snapshotOptions === undefined || version === 0
        ? Effect.void
        : withSnapshots(saveSnapshot(streamId, {
          ...snapshotOptions,
          version,
          firstVersion: from.firstVersion,
          epoch: from.epoch,
          state
        }))

    const snapshot = (streamId: string) =>
      loadFolded(streamId).pipe(
        Effect.tap((loaded) => save(streamId, loaded, loaded.version, loaded.state)),
        Effect.map(({ snapshotVersion, state, version }): Loaded<S> => ({ state, version, snapshotVersion })),
        Effect.withSpan("CommandHandler.snapshot", { attributes: { aggregate: aggregate.name, streamId } })
      )

    const attempt = (
      streamId: string,
      command: C,
      handleOptions: HandleOptions | undefined,
      correlation: Correlation.Correlation
    ) =>
      Effect.gen(function*() {
        const loaded = yield* loadFolded(streamId)
        const expected = handleOptions?.expectedVersion
        if (expected !== undefined && expected !== loaded.version) {
          return yield* new ConcurrencyError({
            streamId,
            expected: expected === 0 ? "no_stream" : expected,
            actual: loaded.version
          })
        }
        const events = yield* aggregate.decide(command, loaded.state)
        const state = Aggregate.fold(aggregate, events, loaded.state)
        if (events.length === 0) {
          return { loaded, handled: { streamId, events, state, version: loaded.version, positions: [] } }
        }
        const metadata: EventMetadata = { ...handleOptions?.metadata, ...Correlation.toMetadata(correlation) }
        const result = yield* store.append(
          streamId,
          events.map((event) => ({
            ...event,
            metadata: { ...metadata, ...(event as { metadata?: EventMetadata }).metadata }
          })),
          { expectedVersion: loaded.version === 0 ? "no_stream" : loaded.version }
        )
        return {
          loaded,
          handled: { streamId, events, state, version: result.streamVersion, positions: result.positions }
        }
      })

    const handle = (streamId: string, command: C, handleOptions?: HandleOptions) =>
      Effect.gen(function*() {
        if (handleOptions?.snapshot === true && snapshotOptions === undefined) {
          return yield* Effect.dieMessage(
            `Aggregate "${aggregate.name}" has no snapshot options, so it cannot save a snapshot on demand`
          )
        }
        const expected = handleOptions?.expectedVersion
        if (expected !== undefined && !(Number.isSafeInteger(expected) && expected >= 0)) {
          return yield* new InvalidInput({ field: "expectedVersion", reason: "must be a non-negative integer" })
        }
        const correlation = Correlation.merge(yield* Correlation.current, handleOptions ?? {})
        // Only conflicts are retried: every other failure leaves the retry loop as a value.
        const { handled, loaded } = yield* attempt(streamId, command, handleOptions, correlation).pipe(
          Effect.map(Either.right),
          Effect.catchAll((error) =>
            isConcurrencyError(error) ? Effect.fail(error) : Effect.succeed(Either.left(error))
          ),
          // A caller's own expected version is not retried: a conflict is its answer.
          Effect.retry(expected === undefined ? retry : Schedule.stop),
          Effect.flatten
        )
        const due = handleOptions?.snapshot === true ||
          (snapshotOptions?.every !== undefined && handled.version - loaded.snapshotVersion >= snapshotOptions.every)
        if (due && handled.version > 0) {
          // The events are stored: a failed snapshot (a cache) must not turn the command into a failure.
          yield* save(streamId, loaded, handled.version, handled.state).pipe(
            Effect.catchAll((error) =>
              Effect.logWarning(`Could not save the snapshot of "${streamId}" at version ${handled.version}`, error)
            )
          )
        }
        return handled as Handled<S, E>
      }).pipe(Effect.withSpan("CommandHandler.handle", { attributes: { aggregate: aggregate.name, streamId } }))

    return { aggregate, load, handle, snapshot }
  })
