/**
 * At most one active runner per projection: the others stand by and take over
 * when it goes away.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { StoreError } from "./Errors.js"

/**
 * The runner no longer holds its lock (its connection died, its lease could not
 * be renewed): it must stop at once.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockLost extends Schema.TaggedError<LockLost>()("LockLost", {
  name: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Lost the runner lock of "${this.name}": ${this.reason}`
  }
}

/**
 * The lock cannot work where it runs (for example, a session advisory lock
 * behind a transaction-mode pooler): retrying will not help; the deployment
 * needs another kind of lock. `reason` says which.
 *
 * @since 0.1.0
 * @category errors
 */
export class LockUnsupported extends Schema.TaggedError<LockUnsupported>()("LockUnsupported", {
  name: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `The runner lock of "${this.name}" cannot work here: ${this.reason}`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RunnerLock {
  /**
   * Waits until this runner holds the lock for `name`, and holds it for the
   * scope. The returned effect never succeeds: it fails with `LockLost` as
   * soon as the lock is gone, so a runner races its work against it. Both fail
   * with `LockUnsupported` when the lock turns out not to work where it runs
   * (and acquiring, with `LockLost` when the lock is gone as soon as it is taken).
   * Waiting is interruptible: a standby stops as soon as its scope closes.
   */
  readonly acquire: (
    name: string
  ) => Effect.Effect<
    Effect.Effect<never, LockLost | LockUnsupported>,
    StoreError | LockLost | LockUnsupported,
    Scope.Scope
  >
}

/**
 * The tag of the `RunnerLock` service.
 *
 * @since 0.1.0
 * @category tags
 */
export const RunnerLock: Context.Tag<RunnerLock, RunnerLock> = Context.GenericTag<RunnerLock>(
  "effect-event-store/RunnerLock"
)

const makeLocalLock = (): RunnerLock => {
  const locks = new Map<string, Effect.Semaphore>()
  const semaphore = (name: string) =>
    Effect.sync(() => {
      const existing = locks.get(name)
      if (existing) return existing
      const created = Effect.unsafeMakeSemaphore(1)
      locks.set(name, created)
      return created
    })
  return RunnerLock.of({
    acquire: (name) =>
      Effect.flatMap(semaphore(name), (lock) =>
        // Not `acquireRelease`, whose acquire is uninterruptible: a standby waits
        // here while the holder lives, and must still stop when its scope closes.
        // Only taking the permit and registering its release are one step.
        Effect.uninterruptibleMask((restore) =>
          Effect.zipRight(restore(lock.take(1)), Effect.addFinalizer(() => lock.release(1)))
        ).pipe(Effect.as(Effect.never)))
  })
}

/**
 * Within one process only: for the in-memory and embedded backends, where no
 * other process can share the store, and for tests.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeLocal: Effect.Effect<RunnerLock> = Effect.sync(makeLocalLock)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerLocal: Layer.Layer<RunnerLock> = Layer.effect(RunnerLock, makeLocal)
