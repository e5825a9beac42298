/**
 * The conformance suite: every rule of the `EventStore` contract, as cases
 * that run against any backend. Each case gets a fresh, empty store from
 * `backend.makeStore`, built with `maxEventBytes` = 1 KiB.
 */
import { describe } from "@effect/vitest"
import type { Backend } from "../support/Harness.js"
import { appendCases } from "./appends.js"
import { expectedVersionCases } from "./expectedVersion.js"
import { idempotencyCases } from "./idempotency.js"
import { lifecycleCases } from "./lifecycle.js"
import { modelCases } from "./model.js"
import { readAllCases } from "./readAll.js"
import { readStreamCases } from "./readStream.js"
import { recordedEventCases } from "./recordedEvents.js"
import { streamCases } from "./streams.js"
import { validationCases } from "./validation.js"
import { viewStreamCases } from "./viewStream.js"

export interface ConformanceOptions {
  /** Runs of the model property test (default 50). */
  readonly propertyRuns?: number | undefined
}

export const conformance = (backend: Backend, options?: ConformanceOptions): void => {
  describe(`EventStore conformance: ${backend.name}`, () => {
    expectedVersionCases(backend)
    appendCases(backend)
    idempotencyCases(backend)
    validationCases(backend)
    readStreamCases(backend)
    readAllCases(backend)
    recordedEventCases(backend)
    streamCases(backend)
    lifecycleCases(backend)
    viewStreamCases(backend)
    modelCases(backend, options?.propertyRuns ?? 50)
  })
}
