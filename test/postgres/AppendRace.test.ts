/**
 * Appends that race the creation of a stream, on the real server where they
 * really run at once: every `ConcurrencyError` reports a version that the
 * append's check really saw, so `expected` is never satisfied by `actual`
 * (no `{ expected: 1, actual: 1 }`, no `stream_exists` at `actual: 1`), and
 * the stream's versions stay 1, 2, 3 … without gaps.
 */
import { describe, expect, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Fiber, Stream } from "effect"
import type { ConcurrencyError } from "../../src/Errors.js"
import { EventStore } from "../../src/EventStore.js"
import * as ExpectedVersion from "../../src/ExpectedVersion.js"
import { serverAvailable, storeLayer, uniqueSchema } from "./support.js"

const creators = 16
const rounds = 25

// Every kind of expected version, so that each meets a stream that is being created.
const expectations: ReadonlyArray<ExpectedVersion.ExpectedVersion> = ["no_stream", "stream_exists", "any", 1, 2, 3]

describe.skipIf(!serverAvailable)("appends racing the creation of a stream on PostgreSQL", () => {
  it.live(
    `${creators} appends with every kind of expected version racing to create a stream: every ConcurrencyError is self-consistent`,
    () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        const conflicts: Array<ConcurrencyError> = []
        let appended = 0
        for (let round = 0; round < rounds; round++) {
          const streamId = `Race-${round}`
          const gate = yield* Deferred.make<void>()
          const fibers = yield* Effect.forkAll(
            Array.from({ length: creators }, (_, i) => {
              const expectedVersion = expectations[i % expectations.length] ?? "any"
              return Deferred.await(gate).pipe(
                Effect.zipRight(store.append(streamId, [{ eventType: "Raced", data: { i } }], { expectedVersion })),
                Effect.either
              )
            })
          )
          yield* Deferred.succeed(gate, undefined)
          const outcomes = yield* Fiber.join(fibers)
          for (const outcome of outcomes) {
            if (Either.isRight(outcome)) {
              appended++
              continue
            }
            const error = outcome.left
            expect(error._tag).toBe("ConcurrencyError")
            if (error._tag === "ConcurrencyError") conflicts.push(error)
          }
          const versions = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readStream(streamId))).map((e) =>
            e.streamVersion
          )
          expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1))
          expect(versions.length).toBe(outcomes.filter(Either.isRight).length)
        }
        expect(appended).toBeGreaterThan(0)
        expect(conflicts.length).toBeGreaterThan(0)
        const contradictions = conflicts.filter((error) =>
          error.actual === undefined || ExpectedVersion.isSatisfiedBy(error.expected, error.actual)
        )
        expect(contradictions.map((error) => ({ expected: error.expected, actual: error.actual }))).toEqual([])
      }).pipe(Effect.provide(storeLayer(uniqueSchema("append_race"), creators + 2))),
    120_000
  )
})
