/**
 * The conformance suite on embedded PostgreSQL (PGlite). Starting PGlite takes
 * about a second, so the file shares one in-memory database and gives every
 * case a schema of its own; one case checks `PgliteEventStore.layer` itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { PgliteClient, PgliteEventStore } from "../../src/pglite/index.js"
import { append, failsWith, readAll, readStream } from "../support/Harness.js"
import { makeSchemaFixture, startupTimeout } from "../support/postgres.js"
import { checkpointConformance } from "./checkpoints.js"
import { conformance } from "./suite.js"

const fixture = makeSchemaFixture("PGlite", PgliteClient.layer(), { dropSchemas: false })
beforeAll(() => fixture.start(), startupTimeout)
afterAll(() => fixture.dispose())

conformance(fixture, { propertyRuns: 30 })
checkpointConformance(fixture)

describe("PgliteEventStore.layer", () => {
  it.live(
    "builds a store on its own embedded database, with the maxEventBytes it is given",
    () =>
      Effect.gen(function*() {
        const result = yield* append("Order-1", [{ eventType: "Placed", data: { total: 1 } }], {
          expectedVersion: "no_stream"
        })
        expect(result.streamVersion).toBe(1)
        const error = yield* failsWith("InvalidInput")(append("Order-1", [{ eventType: "Big", data: "x".repeat(200) }]))
        expect(error.field).toBe("events[0]")
        expect((yield* readStream("Order-1")).map((e) => e.data)).toEqual([{ total: 1 }])
        expect(yield* readAll()).toHaveLength(1)
      }).pipe(Effect.provide(PgliteEventStore.layer({ maxEventBytes: 100 }))),
    startupTimeout
  )
})
