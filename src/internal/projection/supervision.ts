/**
 * What follows the end of a run: what the database does is worth starting
 * over for (a store error restarts with a backoff, a lost lock or a moved
 * checkpoint puts the runner on standby, a superseded generation starts it
 * on the active one); everything else stops the runner.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import { CheckpointConflict } from "../../CheckpointStore.js"
import { InvalidInput, StoreError } from "../../Errors.js"
import { Superseded } from "../../Generations.js"
import type { RunnerError, RunnerState } from "../../Projection.js"
import { LockLost, LockUnsupported } from "../../RunnerLock.js"
import * as Failures from "./failures.js"
import * as Jobs from "./job.js"
import * as State from "./state.js"

// Back off while restarts keep coming; start afresh after a minute without one.
const restartDelay = Schedule.exponential(Duration.millis(200)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(10))),
  Schedule.resetAfter(Duration.minutes(1))
)

/** What follows an end of a run: a restart (a state, and a warning) or a stop. */
export type Outcome =
  | { readonly restart: true; readonly state: RunnerState; readonly log: string; readonly info?: boolean }
  | { readonly restart: false; readonly state: Extract<RunnerState, { readonly _tag: "Failed" }> }

const stop = (cause: Cause.Cause<RunnerError>): Outcome => ({
  restart: false,
  state: { _tag: "Failed", reason: Failures.describe(cause), cause }
})

export const outcome = (cause: Cause.Cause<unknown>): Outcome => {
  const failure = Cause.failureOption(cause)
  if (Cause.isDie(cause) || Option.isNone(failure)) return stop(Cause.stripFailures(cause))
  const error = failure.value
  if (error instanceof StoreError) {
    return {
      restart: true,
      state: { _tag: "Restarting", reason: error.message },
      log: `restarts after a store error: ${error.message}`
    }
  }
  if (error instanceof LockLost || error instanceof CheckpointConflict) {
    return { restart: true, state: { _tag: "Standby" }, log: `stands down: ${error.message}` }
  }
  if (error instanceof Superseded) {
    return {
      restart: true,
      state: { _tag: "Standby" },
      log: `starts over on the active generation: ${error.message}`,
      info: true
    }
  }
  if (error instanceof InvalidInput || error instanceof LockUnsupported) return stop(Cause.fail(error))
  return stop(Cause.die(error))
}

/**
 * Runs `runOnce` again and again, after the backoff, until the outcome of
 * an end is a stop: then fails with its cause, the state showing it.
 */
export const supervise = <E, R, T extends string, R1>(
  job: Jobs.Job<E, R, T>,
  runOnce: Effect.Effect<unknown, unknown, R1>
): Effect.Effect<never, RunnerError, R1> =>
  runOnce.pipe(
    Effect.catchAllCause((cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.interrupt
      const next = outcome(cause)
      if (next.restart) {
        const log = next.info === true ? Effect.logInfo : Effect.logWarning
        return Effect.zipRight(
          State.transition(job.state, next.state),
          Jobs.logged(job)(log(`Projection "${job.name}" ${next.log}`))
        )
      }
      return Effect.zipRight(
        State.transition(job.state, next.state),
        Jobs.logged(job)(Effect.logError(`Projection "${job.name}" stopped: ${next.state.reason}`, cause))
      ).pipe(Effect.zipRight(Effect.failCause(next.state.cause)))
    }),
    Effect.repeat(restartDelay),
    Effect.zipRight(Effect.never)
  )
