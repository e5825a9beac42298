/**
 * An application's projections, started together: their runners and statuses
 * in one place, and a readiness check for a health endpoint (a Kubernetes
 * readiness probe, a load balancer's health check).
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { CheckpointStore } from "./CheckpointStore.js"
import { InvalidInput, StoreError } from "./Errors.js"
import type { EventStore } from "./EventStore.js"
import * as Projection from "./Projection.js"
import type { RunnerLock } from "./RunnerLock.js"

/**
 * When a projection counts as ready. Lag is measured on the projection's
 * checkpoint, which all its runners share, so a runner on standby is judged by
 * how well the active runner (in whichever process) keeps up.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadinessOptions {
  /**
   * The most a ready projection may be behind, in time: the age of the first
   * event it has not applied yet (default 10 seconds). A projection that is
   * live is never behind.
   */
  readonly maxLag?: Duration.DurationInput | undefined
  /**
   * The most a ready projection may be behind, in positions of the global log
   * from the first event it has not applied yet to the head (an upper bound on
   * the events left; default: no bound).
   */
  readonly maxLagPositions?: bigint | number | undefined
  /**
   * How long a runner may stand by (waiting for the runner lock) and still be
   * ready (default: no bound, because another process is expected to hold the
   * lock, and the lag bounds tell whether it keeps up). Set it where no other
   * process should hold the lock: then a long standby means a lock held by a
   * process that is gone or stuck.
   */
  readonly maxStandby?: Duration.DurationInput | undefined
  /**
   * How long a projection's status may take before it counts as not ready
   * (default 5 seconds): a probe must answer even when the database does not.
   */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SupervisorOptions {
  readonly readiness?: ReadinessOptions | undefined
}

/**
 * One projection's readiness: `reasons` says why it is not ready (empty when
 * it is).
 *
 * @since 0.1.0
 * @category models
 */
export const ProjectionReadiness: Schema.Struct<{
  name: typeof Schema.String
  ready: typeof Schema.Boolean
  reasons: Schema.Array$<typeof Schema.String>
  status: Schema.optional<typeof Projection.ProjectionStatus>
}> = Schema.Struct({
  name: Schema.String,
  ready: Schema.Boolean,
  reasons: Schema.Array(Schema.String),
  /** Absent when the status could not be read (the reasons say why). */
  status: Schema.optional(Projection.ProjectionStatus)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectionReadiness extends Schema.Schema.Type<typeof ProjectionReadiness> {}

/**
 * The readiness of every projection of a supervisor: ready when each one is.
 * A schema, so that an HTTP endpoint can encode it to JSON.
 *
 * @since 0.1.0
 * @category models
 */
export const Readiness: Schema.Struct<{
  ready: typeof Schema.Boolean
  projections: Schema.Array$<typeof ProjectionReadiness>
}> = Schema.Struct({
  ready: Schema.Boolean,
  projections: Schema.Array(ProjectionReadiness)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Readiness extends Schema.Schema.Type<typeof Readiness> {}

/**
 * @since 0.1.0
 * @category models
 */
export interface ProjectionSupervisor {
  /** The runners, in the order their projections were given. */
  readonly runners: ReadonlyArray<Projection.ProjectionRunner>
  /** The runner of the projection called `name`, to skip or park its event, or watch its state. */
  readonly runner: (name: string) => Option.Option<Projection.ProjectionRunner>
  /** Every runner's status. */
  readonly statuses: Effect.Effect<ReadonlyArray<Projection.ProjectionStatus>, InvalidInput | StoreError>
  /**
   * Whether every projection is ready: none failed or stopped on an event
   * (here or in another process), each within the lag bounds, none on standby
   * for longer than `maxStandby`. It never fails: a status that cannot be read
   * (the database is unreachable) makes its projection not ready.
   */
  readonly readiness: Effect.Effect<Readiness>
}

/**
 * The tag of the `ProjectionSupervisor` service.
 *
 * @since 0.1.0
 * @category tags
 */
export const ProjectionSupervisor: Context.Tag<ProjectionSupervisor, ProjectionSupervisor> = Context.GenericTag<
  ProjectionSupervisor
>("effect-event-store/ProjectionSupervisor")

/**
 * Why a projection in this status is not ready, if it is not (pure, for
 * callers with statuses of their own).
 *
 * @since 0.1.0
 * @category readiness
 */
export const unreadyReasons = (
  status: Projection.ProjectionStatus,
  options: ReadinessOptions | undefined,
  now: number
): ReadonlyArray<string> => {
  const reasons: Array<string> = []
  const maxLag = Duration.toMillis(options?.maxLag ?? Duration.seconds(10))
  if (status.state === "failed") reasons.push(`failed: ${status.error ?? "unknown error"}`)
  else if (status.failure !== undefined) {
    reasons.push(
      `stopped on ${status.failure.eventType} ${status.failure.eventId} at position ${status.failure.position}: ${status.failure.error}`
    )
  }
  if (status.lag.millis > maxLag) reasons.push(`behind by ${status.lag.millis} ms (at most ${maxLag} ms)`)
  if (options?.maxLagPositions !== undefined && status.lag.positions > BigInt(options.maxLagPositions)) {
    reasons.push(`behind by ${status.lag.positions} positions (at most ${options.maxLagPositions})`)
  }
  if (options?.maxStandby !== undefined && status.state === "standby" && status.since !== undefined) {
    const standing = now - status.since.getTime()
    const maxStandby = Duration.toMillis(options.maxStandby)
    if (standing > maxStandby) {
      reasons.push(`on standby for ${standing} ms (at most ${maxStandby} ms): another process holds the runner lock`)
    }
  }
  return reasons
}

/**
 * What the projections of a supervisor need, besides the stores and the
 * runner lock: their handlers' requirements, and the read model `Generations`
 * when one of them declares tables.
 *
 * @since 0.1.0
 * @category models
 */
export type Requirements<P> = P extends Projection.Projection<infer _E, infer R, infer T> ?
  R | Projection.TablesRequirement<T>
  : never

/**
 * Starts `projections` in the background of the scope, each with
 * `Projection.start`: it needs what they need (the stores, a `RunnerLock`,
 * their handlers' requirements, and `Generations` when one declares tables).
 * Fails with `InvalidInput` when two share a name (they would share a
 * checkpoint).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <P extends Projection.Projection<unknown, unknown, string>>(
  projections: ReadonlyArray<P>,
  options?: SupervisorOptions
): Effect.Effect<
  ProjectionSupervisor,
  InvalidInput,
  EventStore | CheckpointStore | RunnerLock | Scope.Scope | Requirements<P>
> =>
  Effect.gen(function*() {
    const names = projections.map((projection) => projection.name)
    const duplicate = names.find((name, index) => names.indexOf(name) !== index)
    if (duplicate !== undefined) {
      return yield* new InvalidInput({ field: "projections", reason: `two projections are named "${duplicate}"` })
    }
    const runners: ReadonlyArray<Projection.ProjectionRunner> = yield* Effect.forEach(
      projections,
      // A projection's requirements are `Requirements<P>` by definition; the
      // compiler cannot see it through the generic `P`.
      (projection) =>
        Projection.start(projection) as Effect.Effect<
          Projection.ProjectionRunner,
          never,
          EventStore | CheckpointStore | RunnerLock | Scope.Scope | Requirements<P>
        >
    )
    const byName = new Map(runners.map((runner) => [runner.name, runner]))
    const timeout = Duration.decode(options?.readiness?.timeout ?? Duration.seconds(5))

    const readinessOf = (runner: Projection.ProjectionRunner): Effect.Effect<ProjectionReadiness> =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const status = yield* Effect.either(runner.status.pipe(Effect.timeoutFail({
          duration: timeout,
          onTimeout: () => new StoreError({ message: `no answer within ${Duration.format(timeout)}` })
        })))
        if (status._tag === "Left") {
          return { name: runner.name, ready: false, reasons: [`status unavailable: ${status.left.message}`] }
        }
        const reasons = unreadyReasons(status.right, options?.readiness, now)
        return { name: runner.name, ready: reasons.length === 0, reasons, status: status.right }
      })

    return ProjectionSupervisor.of({
      runners,
      runner: (name) => Option.fromNullable(byName.get(name)),
      statuses: Effect.forEach(runners, (runner) => runner.status, { concurrency: "unbounded" }),
      readiness: Effect.map(
        Effect.forEach(runners, readinessOf, { concurrency: "unbounded" }),
        (projections) => ({ ready: projections.every((projection) => projection.ready), projections })
      ).pipe(Effect.withSpan("ProjectionSupervisor.readiness"))
    })
  })

/**
 * The supervisor as a layer: its projections run as long as the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <P extends Projection.Projection<unknown, unknown, string>>(
  projections: ReadonlyArray<P>,
  options?: SupervisorOptions
): Layer.Layer<ProjectionSupervisor, InvalidInput, EventStore | CheckpointStore | RunnerLock | Requirements<P>> =>
  Layer.scoped(ProjectionSupervisor, make(projections, options))
