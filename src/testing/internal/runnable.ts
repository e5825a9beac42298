/**
 * Effects that plain vitest can run too: the value is an `Effect` (for
 * `@effect/vitest` and for composition) and, when it needs no services, a
 * `PromiseLike` (return or await it in a plain `it`).
 *
 * @since 0.1.0
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

/**
 * @since 0.1.0
 * @internal
 */
export type Runnable<A, R> = Effect.Effect<A, never, R> & ([R] extends [never] ? PromiseLike<A> : unknown)

/**
 * The effect, made awaitable: awaiting runs it and rejects with the failure
 * itself (the assertion error, with its `actual` and `expected`), so that test
 * runners show their usual report and diff.
 *
 * @since 0.1.0
 * @internal
 */
export const runnable = <A, R>(effect: Effect.Effect<A, never, R>): Runnable<A, R> => {
  // A fresh effect of our own, so that adding `then` changes nothing shared.
  const self = Effect.suspend(() => effect)
  const then: PromiseLike<A>["then"] = (onFulfilled, onRejected) =>
    Effect.runPromiseExit(effect as Effect.Effect<A>).then((exit) =>
      Exit.isSuccess(exit) ? exit.value : Promise.reject(Cause.squash(exit.cause))
    ).then(onFulfilled, onRejected)
  return Object.assign(self, { then }) as unknown as Runnable<A, R>
}
