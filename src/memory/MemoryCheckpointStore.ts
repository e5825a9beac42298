/**
 * Checkpoints and parked events in memory. A `transaction` applies its saves
 * and parks together when it succeeds, and drops them when it fails.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import { CheckpointConflict, CheckpointStore, type FailedEvent, type ParkedEvent } from "../CheckpointStore.js"
import type { InvalidInput } from "../Errors.js"
import * as Validation from "../internal/validation/index.js"
import type { RecordedEvent } from "../RecordedEvent.js"

interface State {
  readonly checkpoints: ReadonlyMap<string, bigint>
  readonly parked: ReadonlyMap<string, ReadonlyArray<ParkedEvent>>
  readonly failures: ReadonlyMap<string, FailedEvent>
}

type Change = (state: State) => State

const withCheckpoint = (name: string, position: bigint): Change => (state) => ({
  ...state,
  checkpoints: new Map(state.checkpoints).set(name, position)
})

const withParked =
  (name: string, update: (events: ReadonlyArray<ParkedEvent>) => ReadonlyArray<ParkedEvent>): Change => (state) => ({
    ...state,
    parked: new Map(state.parked).set(name, update(state.parked.get(name) ?? []))
  })

const withoutFailure = (projection: string): Change => (state) => {
  const failures = new Map(state.failures)
  failures.delete(projection)
  return { ...state, failures }
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<CheckpointStore, never, Scope.Scope> = Effect.gen(function*() {
  const ref = yield* Ref.make<State>({ checkpoints: new Map(), parked: new Map(), failures: new Map() })
  // The changes of the transaction this fiber is in, if any: a view of the
  // state that the transaction's own reads see, applied to `ref` at its end.
  const pending = yield* FiberRef.make<Option.Option<Ref.Ref<State>>>(Option.none())
  const serial = yield* Effect.makeSemaphore(1)

  const current = Effect.flatMap(FiberRef.get(pending), Option.match({ onNone: () => Ref.get(ref), onSome: Ref.get }))
  const change = (f: Change) =>
    Effect.flatMap(
      FiberRef.get(pending),
      Option.match({ onNone: () => Ref.update(ref, f), onSome: (view) => Ref.update(view, f) })
    )

  // Every name is checked first, as on the SQL backends.
  const load = (name: string) =>
    Effect.map(current, (state) => Option.fromNullable(state.checkpoints.get(name))).pipe(
      Validation.withName("name", name)
    )

  const save = (name: string, position: bigint, options?: { readonly expected?: bigint | undefined }) =>
    Effect.gen(function*() {
      const actual = (yield* current).checkpoints.get(name) ?? 0n
      if (options?.expected !== undefined && options.expected !== actual) {
        return yield* new CheckpointConflict({ name, expected: options.expected, actual })
      }
      yield* change(withCheckpoint(name, position))
    }).pipe(Validation.withName("name", name))

  // Memory transactions run one at a time, so checking is all a lock needs to do.
  const lock = (name: string, expected: bigint) =>
    Effect.flatMap(current, (state) => {
      const actual = state.checkpoints.get(name) ?? 0n
      return actual === expected ? Effect.void : Effect.fail(new CheckpointConflict({ name, expected, actual }))
    }).pipe(Validation.withName("name", name))

  const park = (
    name: string,
    event: Pick<RecordedEvent, "position" | "eventId" | "streamId" | "eventType">,
    error: string
  ) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      change(withParked(name, (events) =>
        [
          ...events.filter((parked) => parked.position !== event.position),
          {
            projection: name,
            position: event.position,
            eventId: event.eventId,
            streamId: event.streamId,
            eventType: event.eventType,
            error,
            parkedAt: new Date(now)
          }
        ].sort((a, b) => (a.position < b.position ? -1 : 1))))).pipe(Validation.withName("name", name))

  const parked = (name: string) =>
    Effect.map(current, (state) => state.parked.get(name) ?? []).pipe(Validation.withName("name", name))

  const unpark = (name: string, position: bigint) =>
    change(withParked(name, (events) => events.filter((event) => event.position !== position))).pipe(
      Validation.withName("name", name)
    )

  const recordFailure = (failure: Omit<FailedEvent, "failedAt">) =>
    Effect.flatMap(
      Clock.currentTimeMillis,
      (now) =>
        change((state) => ({
          ...state,
          failures: new Map(state.failures).set(failure.projection, { ...failure, failedAt: new Date(now) })
        }))
    ).pipe(
      Validation.withName("checkpoint", failure.checkpoint),
      Validation.withName("projection", failure.projection)
    )

  const failure = (projection: string) =>
    Effect.map(current, (state) => Option.fromNullable(state.failures.get(projection))).pipe(
      Validation.withName("projection", projection)
    )

  const clearFailure = (
    projection: string,
    position?: bigint | undefined
  ): Effect.Effect<Option.Option<FailedEvent>, InvalidInput> =>
    Effect.flatMap(current, (state): Effect.Effect<Option.Option<FailedEvent>> => {
      const found = Option.filter(
        Option.fromNullable(state.failures.get(projection)),
        (failed) => position === undefined || failed.position === position
      )
      return Option.isSome(found) ? Effect.as(change(withoutFailure(projection)), found) : Effect.succeedNone
    }).pipe(Validation.withName("projection", projection))

  const transaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(FiberRef.get(pending), (outer) =>
      Option.isSome(outer)
        ? effect // nested: part of the enclosing transaction
        : serial.withPermits(1)(Effect.gen(function*() {
          const view = yield* Ref.make(yield* Ref.get(ref))
          const result = yield* Effect.locally(effect, pending, Option.some(view))
          yield* Ref.set(ref, yield* Ref.get(view))
          return result
        })))

  return CheckpointStore.of({
    load,
    save,
    lock,
    park,
    parked,
    unpark,
    recordFailure,
    failure,
    clearFailure,
    transaction
  })
})

/**
 * Every build is a fresh, empty store.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<CheckpointStore> = Layer.scoped(CheckpointStore, make)
