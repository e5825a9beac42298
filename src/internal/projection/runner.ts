/**
 * The runner loop: wait for the runner lock, follow the log from the
 * checkpoint (or run the generations of a projection with tables), wait out a
 * stop on an event, and start over as `supervision` says.
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import { CheckpointStore } from "../../CheckpointStore.js"
import { InvalidInput } from "../../Errors.js"
import { EventStore } from "../../EventStore.js"
import { Generations } from "../../Generations.js"
import type { Projection, ProjectionRunner, ResolveOptions } from "../../Projection.js"
import { RunnerLock } from "../../RunnerLock.js"
import * as Failures from "./failures.js"
import { follow } from "./follow.js"
import * as GenerationRunner from "./generations.js"
import * as Jobs from "./job.js"
import * as State from "./state.js"
import * as Status from "./status.js"
import * as Supervision from "./supervision.js"

/**
 * Starts `projection` in the background of the scope. `Generations` is
 * looked up, not required: the public signature requires it exactly when the
 * projection declares tables.
 */
export const start = <E, R, T extends string>(
  projection: Projection<E, R, T>
): Effect.Effect<ProjectionRunner, never, EventStore | CheckpointStore | RunnerLock | Scope.Scope | R> =>
  Effect.gen(function*() {
    const lock = yield* RunnerLock
    const generations = yield* Effect.serviceOption(Generations)
    const job = yield* Jobs.make(projection)
    const { checkpoints, name } = job

    const work = Effect.gen(function*() {
      if (projection.tables === undefined) {
        const checkpoint = Option.getOrElse(yield* checkpoints.load(name), () => 0n)
        return yield* follow(job, {
          checkpoint: name,
          tables: GenerationRunner.tablesOf(projection, undefined),
          before: Effect.void,
          after: () => Effect.void
        }, checkpoint)
      }
      if (!job.exactlyOnce) {
        return yield* new InvalidInput({
          field: "delivery",
          reason: "a projection with tables needs exactly-once delivery"
        })
      }
      if (Option.isNone(generations)) {
        return yield* new InvalidInput({
          field: "tables",
          reason: "tables need the Generations service of a SQL backend"
        })
      }
      return yield* GenerationRunner.run(job, generations.value)
    })

    const active = Effect.forever(Effect.catchIf(work, Failures.isStopped, Failures.awaitResolution(job)))

    const runOnce = Effect.scoped(Effect.gen(function*() {
      yield* State.transition(job.state, { _tag: "Standby" })
      const lost = yield* lock.acquire(name)
      // Runs before the lock is released (finalizers run in reverse order), so
      // that nobody sees this runner Running once it has let its lock go.
      yield* Effect.addFinalizer((exit) =>
        State.transition(
          job.state,
          Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)
            ? Supervision.outcome(exit.cause).state
            : { _tag: "Standby" }
        )
      )
      yield* State.transition(job.state, { _tag: "Running" })
      return yield* Effect.raceFirst(active, lost)
    }))

    const fiber = yield* Effect.forkScoped(Supervision.supervise(job, runOnce))
    const statusServices = Context.make(EventStore, job.store).pipe(
      Context.add(CheckpointStore, checkpoints),
      (context) => Option.isSome(generations) ? Context.add(context, Generations, generations.value) : context
    )
    const resolveHere = (action: "skip" | "park") => (options?: ResolveOptions) =>
      Failures.resolve(action, name, options).pipe(
        Effect.tap(() => Queue.offer(job.resolved, undefined)),
        Effect.provideService(CheckpointStore, checkpoints)
      )
    return {
      name,
      state: State.view(job.state),
      status: Effect.flatMap(State.snapshot(job.state), (runner) => Status.statusOf(projection, Option.some(runner)))
        .pipe(
          Effect.provide(statusServices)
        ),
      await: Effect.raceFirst(
        State.untilFailed(job.state),
        Effect.flatMap(fiber.await, (exit) => Exit.isFailure(exit) ? Effect.failCause(exit.cause) : Effect.never)
      ),
      skip: resolveHere("skip"),
      park: resolveHere("park")
    }
  })
