/**
 * A runner's state: held in a `SubscriptionRef` that only the runner writes,
 * with the time it entered it; callers get a read-only view.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as Subscribable from "effect/Subscribable"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { RunnerError, RunnerState } from "../../Projection.js"

export interface StateRef {
  readonly current: SubscriptionRef.SubscriptionRef<RunnerState>
  /** When the runner entered its state. */
  readonly since: Ref.Ref<Date>
}

export const make: Effect.Effect<StateRef> = Effect.gen(function*() {
  const current = yield* SubscriptionRef.make<RunnerState>({ _tag: "Standby" })
  const since = yield* Ref.make(new Date(yield* Clock.currentTimeMillis))
  return { current, since }
})

/**
 * Moves to `next`. Entering `Standby` or `Running` again changes nothing; a
 * `Restarting` or `Failed` again replaces the reason but keeps the time.
 */
export const transition = (self: StateRef, next: RunnerState): Effect.Effect<void> =>
  Effect.gen(function*() {
    const current = yield* SubscriptionRef.get(self.current)
    if (current._tag !== next._tag) yield* Ref.set(self.since, new Date(yield* Clock.currentTimeMillis))
    else if (current._tag === "Standby" || current._tag === "Running") return
    yield* SubscriptionRef.set(self.current, next)
  })

/** The state and when it was entered, for a status. */
export const snapshot = (self: StateRef): Effect.Effect<{ readonly state: RunnerState; readonly since: Date }> =>
  Effect.zipWith(SubscriptionRef.get(self.current), Ref.get(self.since), (state, since) => ({ state, since }))

/** What callers see: the state and its changes, with no way to set it. */
export const view = (self: StateRef): Subscribable.Subscribable<RunnerState> =>
  Subscribable.make({ get: SubscriptionRef.get(self.current), changes: self.current.changes })

/** Fails with the cause of the first `Failed` state; never succeeds. */
export const untilFailed = (self: StateRef): Effect.Effect<never, RunnerError> =>
  self.current.changes.pipe(
    Stream.filter((state) => state._tag === "Failed"),
    Stream.runHead,
    Effect.flatMap(Option.match({
      onNone: () => Effect.never,
      onSome: (failed) => Effect.failCause(failed.cause)
    }))
  )
