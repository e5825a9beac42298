/**
 * The `CheckpointStore` contract, as cases that run against any backend, a
 * fresh store per case: where a checkpoint stands, compare-and-set, what a
 * transaction keeps, and the names every method accepts.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { type CheckpointConflict, CheckpointStore } from "../../src/CheckpointStore.js"
import type { InvalidInput, StoreError } from "../../src/Errors.js"
import { failsWith } from "../support/Harness.js"

export interface CheckpointBackend {
  readonly name: string
  /** A new, empty store every time the layer is provided. */
  readonly makeCheckpoints: () => Layer.Layer<CheckpointStore, unknown>
}

const event = {
  position: 3n,
  eventId: "00000000-0000-4000-8000-000000000003",
  streamId: "Order-1",
  eventType: "Placed"
}

const failedEvent = (projection: string, checkpoint: string) => ({
  projection,
  checkpoint,
  after: 2n,
  position: 3n,
  eventId: event.eventId,
  streamId: event.streamId,
  eventType: event.eventType,
  error: "cannot apply"
})

// What a name may not be: the rules of a stream id.
const invalidNames: ReadonlyArray<readonly [string, string]> = [
  ["empty", ""],
  ["longer than 255 characters", "p".repeat(256)],
  ["with a control character", "orders\u0000"],
  ["not well-formed Unicode", "orders\uD800"]
]

export const checkpointConformance = (backend: CheckpointBackend): void => {
  const test = (name: string, body: () => Effect.Effect<void, unknown, CheckpointStore>) =>
    it.live(name, () => Effect.provide(body(), backend.makeCheckpoints()))

  describe(`CheckpointStore conformance: ${backend.name}`, () => {
    test("a checkpoint never saved loads as none; a saved one loads where it was saved", () =>
      Effect.gen(function*() {
        const checkpoints = yield* CheckpointStore
        expect(yield* checkpoints.load("orders")).toEqual(Option.none())
        yield* checkpoints.save("orders", 7n)
        expect(yield* checkpoints.load("orders")).toEqual(Option.some(7n))
      }))

    test("a compare-and-set save moves the checkpoint only from where it is expected", () =>
      Effect.gen(function*() {
        const checkpoints = yield* CheckpointStore
        yield* checkpoints.save("orders", 5n, { expected: 0n })
        const conflict = yield* failsWith("CheckpointConflict")(checkpoints.save("orders", 9n, { expected: 4n }))
        expect(conflict).toMatchObject({ name: "orders", expected: 4n, actual: 5n })
        yield* checkpoints.save("orders", 9n, { expected: 5n })
        expect(yield* checkpoints.load("orders")).toEqual(Option.some(9n))
      }))

    test("a transaction that fails keeps none of its saves, parks or records", () =>
      Effect.gen(function*() {
        const checkpoints = yield* CheckpointStore
        const failed = yield* Effect.flip(checkpoints.transaction(Effect.gen(function*() {
          yield* checkpoints.save("orders", 3n)
          yield* checkpoints.park("orders", event, "cannot apply")
          yield* checkpoints.recordFailure(failedEvent("orders", "orders"))
          return yield* Effect.fail("rolled back" as const)
        })))
        expect(failed).toBe("rolled back")
        expect(yield* checkpoints.load("orders")).toEqual(Option.none())
        expect(yield* checkpoints.parked("orders")).toEqual([])
        expect(yield* checkpoints.failure("orders")).toEqual(Option.none())
      }))

    for (const [what, name] of invalidNames) {
      test(`a checkpoint name ${what} is InvalidInput in every method, and nothing is written`, () =>
        Effect.gen(function*() {
          const checkpoints = yield* CheckpointStore
          const calls: ReadonlyArray<
            readonly [string, string, Effect.Effect<unknown, InvalidInput | CheckpointConflict | StoreError>]
          > = [
            ["load", "name", checkpoints.load(name)],
            ["save", "name", checkpoints.save(name, 1n)],
            ["save with expected", "name", checkpoints.save(name, 1n, { expected: 0n })],
            ["lock", "name", checkpoints.transaction(checkpoints.lock(name, 0n))],
            ["park", "name", checkpoints.park(name, event, "cannot apply")],
            ["parked", "name", checkpoints.parked(name)],
            ["unpark", "name", checkpoints.unpark(name, 3n)],
            ["recordFailure (projection)", "projection", checkpoints.recordFailure(failedEvent(name, "orders"))],
            ["recordFailure (checkpoint)", "checkpoint", checkpoints.recordFailure(failedEvent("orders", name))],
            ["failure", "projection", checkpoints.failure(name)],
            ["clearFailure", "projection", checkpoints.clearFailure(name)],
            ["clearFailure at a position", "projection", checkpoints.clearFailure(name, 3n)]
          ]
          const refused: Array<readonly [string, string]> = []
          for (const [method, , call] of calls) {
            const error = yield* failsWith("InvalidInput")(call)
            refused.push([method, error.field])
          }
          expect(refused).toEqual(calls.map(([method, field]) => [method, field]))
          // The record with a valid projection and an invalid checkpoint was not kept.
          expect(yield* checkpoints.failure("orders")).toEqual(Option.none())
          expect(yield* checkpoints.load("orders")).toEqual(Option.none())
        }))
    }
  })
}
