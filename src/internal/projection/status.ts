/**
 * Where a projection is: its checkpoint, the head, the lag, a rebuild in
 * progress, the event it stopped on, and, for a runner, its state.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { CheckpointStore } from "../../CheckpointStore.js"
import type { InvalidInput, StoreError } from "../../Errors.js"
import { EventStore } from "../../EventStore.js"
import { Generations } from "../../Generations.js"
import { checkpointName, type Projection, type ProjectionStatus, type RunnerState } from "../../Projection.js"
import * as Failures from "./failures.js"

const stateName = (state: RunnerState, caughtUp: boolean): ProjectionStatus["state"] => {
  switch (state._tag) {
    case "Standby":
      return "standby"
    case "Restarting":
      return "restarting"
    case "Failed":
      return "failed"
    case "Running":
      return caughtUp ? "live" : "catching-up"
  }
}

/**
 * The status of `projection`, with the state of `runner` when it is a
 * runner's own. `Generations` is looked up for a projection with tables,
 * whose callers' types require it.
 */
export const statusOf = <E, R, T extends string>(
  projection: Projection<E, R, T>,
  runner: Option.Option<{ readonly state: RunnerState; readonly since: Date }>
): Effect.Effect<ProjectionStatus, InvalidInput | StoreError, EventStore | CheckpointStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore
    const checkpoints = yield* CheckpointStore
    const generations = projection.tables === undefined ? Option.none() : yield* Effect.serviceOption(Generations)
    const generation = Option.isSome(generations) ? yield* generations.value.current(projection.name) : undefined
    const load = (g: number | undefined) =>
      Effect.map(checkpoints.load(checkpointName(projection.name, g)), Option.getOrElse(() => 0n))
    const position = yield* load(generation?.active)
    const next = yield* Stream.runHead(store.readAll({
      from: position + 1n,
      limit: 1,
      filter: projection.filter,
      includeArchived: projection.includeArchived
    })).pipe(
      Effect.catchTag("InvalidInput", () => Effect.succeedNone)
    )
    // Read after the next event, so that the head is never before it.
    const head = yield* store.headPosition
    const stopped = yield* Failures.failure(projection.name)
    const now = yield* Clock.currentTimeMillis
    const local = Option.getOrUndefined(runner)
    const caughtUp = Option.isNone(next)
    const error = local?.state._tag === "Failed" || local?.state._tag === "Restarting"
      ? local.state.reason
      : Option.isSome(stopped)
      ? `stopped on ${stopped.value.eventType} ${stopped.value.eventId} at position ${stopped.value.position}: ${stopped.value.error}`
      : undefined
    return {
      name: projection.name,
      state: local !== undefined
        ? stateName(local.state, caughtUp)
        : Option.isSome(stopped)
        ? "failed"
        : caughtUp
        ? "live"
        : "catching-up",
      position,
      head,
      lag: Option.match(next, {
        onNone: () => ({ positions: 0n, millis: 0 }),
        onSome: (event) => ({
          positions: head >= event.position ? head - event.position + 1n : 1n,
          millis: Math.max(0, now - event.recordedAt.getTime())
        })
      }),
      since: local?.since,
      error,
      failure: Option.match(stopped, {
        onNone: () => undefined,
        onSome: ({ error, eventId, eventType, failedAt, position, streamId }) => ({
          position,
          eventId,
          streamId,
          eventType,
          error,
          failedAt
        })
      }),
      generation: generation?.active,
      rebuild: generation?.building === undefined
        ? undefined
        : { generation: generation.building, position: yield* load(generation.building) }
    }
  })
