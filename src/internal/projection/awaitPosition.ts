/**
 * Read your own writes: waiting until a projection has applied everything
 * for it up to a position of the log.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { CheckpointStore } from "../../CheckpointStore.js"
import type { InvalidInput, StoreError } from "../../Errors.js"
import { EventStore } from "../../EventStore.js"
import { Generations } from "../../Generations.js"
import { checkpointName, type Projection, ProjectionWaitTimeout } from "../../Projection.js"
import * as Validation from "../validation/index.js"

export interface AwaitOptions {
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * Where the projection stands, if it has passed `position`: its checkpoint is
 * there, or (a filtered projection, whose checkpoint moves only with its own
 * events and once a batch of other events has passed) the log is settled up to
 * `position` and nothing for it lies between its checkpoint and `position`.
 */
const reached = <E, R, T extends string>(projection: Projection<E, R, T>, position: bigint) =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const checkpoints = yield* CheckpointStore
    const generations = projection.tables === undefined ? Option.none() : yield* Effect.serviceOption(Generations)
    const generation = Option.isSome(generations)
      ? (yield* generations.value.current(projection.name)).active
      : undefined
    const checkpoint = Option.getOrElse(
      yield* checkpoints.load(checkpointName(projection.name, generation)),
      () => 0n
    )
    if (checkpoint >= position) return { passed: true, checkpoint }
    if ((yield* store.headPosition) < position) return { passed: false, checkpoint }
    const next = yield* Stream.runHead(store.readAll({
      from: checkpoint + 1n,
      limit: 1,
      filter: projection.filter,
      includeArchived: projection.includeArchived
    }))
    return { passed: Option.isNone(next) || next.value.position > position, checkpoint }
  })

// Soon at first (a projection that is live usually gets there within a batch),
// then at most every 100 ms.
const polls = Schedule.union(Schedule.exponential(Duration.millis(2)), Schedule.spaced(Duration.millis(100)))

export const awaitPosition = <E, R, T extends string>(
  projection: Projection<E, R, T>,
  position: bigint,
  options?: AwaitOptions
): Effect.Effect<void, ProjectionWaitTimeout | InvalidInput | StoreError, EventStore | CheckpointStore> =>
  Effect.gen(function*() {
    yield* Validation.position("position", position)
    const timeout = Duration.decode(options?.timeout ?? Duration.seconds(5))
    let last = 0n
    const look = Effect.tap(reached(projection, position), ({ checkpoint }) => {
      last = checkpoint
    })
    yield* look.pipe(
      Effect.repeat({ schedule: polls, until: ({ passed }) => passed }),
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => new ProjectionWaitTimeout({ projection: projection.name, position, reached: last, timeout })
      })
    )
  }).pipe(
    Effect.withSpan("Projection.awaitPosition", {
      attributes: { projection: projection.name, position: position.toString() },
      captureStackTrace: false
    })
  )
