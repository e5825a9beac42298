/**
 * Invariants 2 and 4 as a property: any sequence of appends with any expected
 * versions agrees with a map of stream → version, leaves versions 1..n without
 * gaps, and readAll lists exactly the successful appends, in order.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { EventData } from "../../src/EventData.js"
import {
  append,
  type Backend,
  event,
  expectIncreasing,
  idsOf,
  limits,
  listStreams,
  nth,
  positionsOf,
  range,
  readAll,
  readStream,
  streamVersion,
  versionsOf
} from "../support/Harness.js"
import { accepts, type AppendCommand, appendCommandsArbitrary, resolve, streamIds } from "../support/model.js"

interface Stored {
  readonly streamId: string
  readonly event: EventData
  readonly position: bigint
}

const run = (commands: ReadonlyArray<AppendCommand>) =>
  Effect.gen(function*() {
    const versions = new Map<string, number>()
    const log: Array<Stored> = []
    for (const [index, command] of commands.entries()) {
      const streamId = nth(streamIds, command.stream)
      const actual = versions.get(streamId) ?? 0
      const expected = resolve(command.expectation, actual)
      const batch = range(1, command.count).map((i) => event(`Command${index}`, { index, i }))
      const outcome = yield* Effect.either(
        append(streamId, batch, expected === undefined ? undefined : { expectedVersion: expected })
      )
      if (accepts(expected, actual)) {
        if (Either.isLeft(outcome)) {
          throw new Error(
            `command ${index}: expected ${
              String(expected)
            } at version ${actual} should succeed: ${outcome.left.message}`
          )
        }
        expect(outcome.right.streamVersion).toBe(actual + command.count)
        expect(outcome.right.positions).toHaveLength(command.count)
        expectIncreasing([...log.map((s) => s.position), ...outcome.right.positions])
        versions.set(streamId, actual + command.count)
        batch.forEach((e, i) => log.push({ streamId, event: e, position: nth(outcome.right.positions, i) }))
      } else {
        if (Either.isRight(outcome)) {
          throw new Error(`command ${index}: expected ${String(expected)} at version ${actual} should fail`)
        }
        const error = outcome.left
        expect(error._tag).toBe("ConcurrencyError")
        if (error._tag === "ConcurrencyError") {
          expect(error.streamId).toBe(streamId)
          expect(error.actual).toBe(actual)
          expect(error.expected).toEqual(expected === 0 ? "no_stream" : expected)
        }
      }
    }

    for (const streamId of streamIds) {
      const version = versions.get(streamId) ?? 0
      expect(yield* streamVersion(streamId)).toEqual(version === 0 ? Option.none() : Option.some(version))
      if (version > 0) {
        const stream = yield* readStream(streamId, { batchSize: 2 })
        expect(versionsOf(stream)).toEqual(range(1, version))
        expect(idsOf(stream)).toEqual(idsOf(log.filter((s) => s.streamId === streamId).map((s) => s.event)))
      }
    }
    const all = yield* readAll({ batchSize: 3 })
    expect(idsOf(all)).toEqual(idsOf(log.map((s) => s.event)))
    expect(all.map((e) => e.streamId)).toEqual(log.map((s) => s.streamId))
    expect(positionsOf(all)).toEqual(log.map((s) => s.position))
    expect((yield* listStreams()).map((s) => [s.streamId, s.version])).toEqual(
      [...versions.entries()].filter(([, v]) => v > 0).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    )
  })

export const modelCases = (backend: Backend, numRuns: number): void => {
  describe("model", () => {
    it.live.prop(
      "random appends with random expected versions over three streams agree with a map of stream to version, and readAll lists exactly the successful appends in order",
      { commands: appendCommandsArbitrary },
      ({ commands }) => Effect.provide(run(commands), backend.makeStore(limits)),
      { timeout: 300_000, fastCheck: { numRuns } }
    )
  })
}
