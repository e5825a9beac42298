/**
 * The conformance suite on a PostgreSQL server (`DATABASE_URL`, default
 * postgres://root@127.0.0.1:5432/test), a new schema per case. Skipped with a
 * message when no server answers, unless `CI` is set.
 */
import { afterAll, beforeAll, describe } from "@effect/vitest"
import * as Postgres from "../support/postgres.js"
import { checkpointConformance } from "./checkpoints.js"
import { conformance } from "./suite.js"

const available = await Postgres.isAvailable()
const fixture = Postgres.makeFixture()
if (available) beforeAll(() => fixture.start(), Postgres.startupTimeout)
afterAll(() => fixture.dispose())

describe.skipIf(!available)(`PostgreSQL at ${Postgres.redactedUrl}`, () => {
  conformance(fixture, { propertyRuns: 30 })
  checkpointConformance(fixture)
})
