/**
 * `viewStream`: one look at a stream that tells state folded from its events
 * whether it is still current. Its version is the one expected versions see;
 * `firstVersion` is where the events `readStream` returns start (the next
 * version when it returns none), and the visible events are always the one
 * run of versions from there to the stream's version; `epoch` changes when an
 * erasure rewrites the stored events. And `recordedAt` never decreases along
 * a stream, which keeps what `maxAge` hides a prefix of the versions.
 */
import { describe, expect } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { EventStore } from "../../src/EventStore.js"
import {
  age,
  append,
  archiveStream,
  type Backend,
  collect,
  deleteStream,
  eraseStream,
  events,
  failsWith,
  makeTest,
  range,
  readStream,
  scavenge,
  setStreamMetadata,
  tombstoneStream,
  versionsOf
} from "../support/Harness.js"

const hour = 60 * 60 * 1000

/** The view's numbers and the versions of its events. */
const view = (streamId: string) =>
  Effect.gen(function*() {
    const { epoch, events, firstVersion, version } = yield* (yield* EventStore).viewStream(streamId)
    return { version, firstVersion, epoch, versions: versionsOf(yield* collect(events())) }
  })

/** The view must agree with readStream and streamVersion on what the stream shows. */
const expectView = (streamId: string, expected: { version: number; firstVersion: number; epoch: number }) =>
  Effect.gen(function*() {
    const seen = yield* view(streamId)
    const visible = expected.version === 0 ? [] : range(expected.firstVersion, expected.version)
    expect(seen).toEqual({ ...expected, versions: visible })
    if (expected.version > 0) expect(versionsOf(yield* readStream(streamId))).toEqual(visible)
  })

export const viewStreamCases = (backend: Backend): void => {
  const test = makeTest(backend)

  describe("viewStream", () => {
    test("a stream that does not exist: version 0, first version 1, epoch 0, no events (not StreamNotFound)", () =>
      expectView("Order-1", { version: 0, firstVersion: 1, epoch: 0 }))

    test("a stream with events: its version, first version 1, and the events readStream returns", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        yield* expectView("Order-1", { version: 3, firstVersion: 1, epoch: 0 })
        const { events: read } = yield* (yield* EventStore).viewStream("Order-1")
        expect(versionsOf(yield* collect(read({ direction: "backward", from: 2 })))).toEqual([2, 1])
        expect(versionsOf(yield* collect(read({ from: 2, limit: 1 })))).toEqual([2])
      }))

    test("the events are read as of the view: later appends are not among them", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        const { events: read } = yield* (yield* EventStore).viewStream("Order-1")
        yield* append("Order-1", events(2))
        expect(versionsOf(yield* collect(read()))).toEqual([1, 2])
      }))

    test("reading a view's events with bad options fails with InvalidInput", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1))
        const { events: read } = yield* (yield* EventStore).viewStream("Order-1")
        const error = yield* failsWith("InvalidInput")(collect(read({ limit: 0 })))
        expect(error.field).toBe("limit")
        const none = yield* (yield* EventStore).viewStream("Order-2")
        expect((yield* failsWith("InvalidInput")(collect(none.events({ batchSize: 0 })))).field).toBe("batchSize")
      }))

    test("truncateBefore: the first version is truncateBefore; past the last version, the next version and no events", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(5))
        yield* setStreamMetadata("Order-1", { truncateBefore: 3 })
        yield* expectView("Order-1", { version: 5, firstVersion: 3, epoch: 0 })
        yield* setStreamMetadata("Order-1", { truncateBefore: 9 })
        yield* expectView("Order-1", { version: 5, firstVersion: 6, epoch: 0 })
        yield* append("Order-1", events(1))
        yield* expectView("Order-1", { version: 6, firstVersion: 7, epoch: 0 })
      }))

    test("maxCount: the first version moves with every append beyond the window", () =>
      Effect.gen(function*() {
        yield* setStreamMetadata("Order-1", { maxCount: 3 })
        yield* append("Order-1", events(2))
        yield* expectView("Order-1", { version: 2, firstVersion: 1, epoch: 0 })
        yield* append("Order-1", events(3))
        yield* expectView("Order-1", { version: 5, firstVersion: 3, epoch: 0 })
      }))

    test("maxAge: the first version is the first event young enough; with none, the next version", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2, "Old"))
        yield* age(3 * hour)
        yield* append("Order-1", events(2, "New"))
        yield* setStreamMetadata("Order-1", { maxAge: "1 hour" })
        yield* expectView("Order-1", { version: 4, firstVersion: 3, epoch: 0 })
        yield* age(3 * hour)
        yield* expectView("Order-1", { version: 4, firstVersion: 5, epoch: 0 })
      }))

    test("recordedAt never decreases along a stream, even when the clock goes back", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1, "First"))
        // Everything stored moves an hour into the future: the clock is an hour behind it.
        yield* age(-hour)
        yield* append("Order-1", events(1, "Second"))
        const [first, second] = yield* readStream("Order-1")
        expect(second !== undefined && first !== undefined && second.recordedAt >= first.recordedAt).toBe(true)
      }))

    test("soft-deleted: version 0 and the next version; re-created, the new events from there", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(3))
        yield* deleteStream("Order-1")
        yield* expectView("Order-1", { version: 0, firstVersion: 4, epoch: 0 })
        yield* append("Order-1", events(2), { expectedVersion: "no_stream" })
        yield* expectView("Order-1", { version: 5, firstVersion: 4, epoch: 0 })
      }))

    test("after a scavenge removed hidden events and the metadata was relaxed: the first event still stored", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(5))
        yield* setStreamMetadata("Order-1", { truncateBefore: 4 })
        yield* scavenge()
        yield* setStreamMetadata("Order-1", {})
        yield* expectView("Order-1", { version: 5, firstVersion: 4, epoch: 0 })
      }))

    test("archived events are in the view, as readStream reads them", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(2))
        yield* archiveStream("Order-1")
        yield* append("Order-1", events(1))
        yield* setStreamMetadata("Order-1", { truncateBefore: 2 })
        yield* expectView("Order-1", { version: 3, firstVersion: 2, epoch: 0 })
      }))

    test("an erasure that erased something moves the epoch on; one that erased nothing, and every other operation, does not", () =>
      Effect.gen(function*() {
        yield* eraseStream("Order-1")
        yield* append("Order-1", events(3))
        yield* archiveStream("Order-1")
        yield* setStreamMetadata("Order-1", { maxCount: 10, custom: { a: 1 } })
        yield* scavenge()
        yield* expectView("Order-1", { version: 3, firstVersion: 1, epoch: 0 })
        expect((yield* eraseStream("Order-1")).erased).toBe(3)
        yield* expectView("Order-1", { version: 3, firstVersion: 1, epoch: 1 })
        expect((yield* eraseStream("Order-1")).erased).toBe(0)
        yield* append("Order-1", events(1))
        yield* expectView("Order-1", { version: 4, firstVersion: 1, epoch: 1 })
        yield* deleteStream("Order-1")
        yield* expectView("Order-1", { version: 0, firstVersion: 5, epoch: 1 })
      }))

    test("a tombstoned stream fails with StreamDeleted", () =>
      Effect.gen(function*() {
        yield* append("Order-1", events(1))
        yield* tombstoneStream("Order-1")
        const store = yield* EventStore
        expect((yield* failsWith("StreamDeleted")(store.viewStream("Order-1"))).streamId).toBe("Order-1")
      }))

    test("an invalid stream id fails with InvalidInput", () =>
      Effect.gen(function*() {
        const store = yield* EventStore
        expect((yield* failsWith("InvalidInput")(store.viewStream(""))).field).toBe("streamId")
      }))
  })
}
