/**
 * A model of the store small enough to be obviously right: a map from stream
 * to version, and the list of events appended so far. Property tests run
 * random appends against a backend and check it agrees with the model.
 */
import * as FastCheck from "effect/FastCheck"
import type { ExpectedVersion } from "../../src/ExpectedVersion.js"

/** What a writer expects, some of it relative to the stream's real version. */
export type Expectation =
  | { readonly _tag: "Default" }
  | { readonly _tag: "Literal"; readonly expected: "any" | "no_stream" | "stream_exists" }
  | { readonly _tag: "Exact"; readonly version: number }
  | { readonly _tag: "Current" }
  | { readonly _tag: "Ahead" }
  | { readonly _tag: "Behind" }

export const expectationArbitrary: FastCheck.Arbitrary<Expectation> = FastCheck.oneof(
  FastCheck.constant({ _tag: "Default" } as const),
  FastCheck.constantFrom("any" as const, "no_stream" as const, "stream_exists" as const).map((expected) => ({
    _tag: "Literal",
    expected
  } as const)),
  FastCheck.integer({ min: 0, max: 6 }).map((version) => ({ _tag: "Exact", version } as const)),
  FastCheck.constant({ _tag: "Current" } as const),
  FastCheck.constant({ _tag: "Ahead" } as const),
  FastCheck.constant({ _tag: "Behind" } as const)
)

/** The `expectedVersion` option for a stream now at `actual`; `undefined`: leave the option out. */
export const resolve = (expectation: Expectation, actual: number): ExpectedVersion | undefined => {
  switch (expectation._tag) {
    case "Default":
      return undefined
    case "Literal":
      return expectation.expected
    case "Exact":
      return expectation.version
    case "Current":
      return actual
    case "Ahead":
      return actual + 1
    case "Behind":
      return Math.max(0, actual - 1)
  }
}

/** The rule, written out again independently of `src/`. */
export const accepts = (expected: ExpectedVersion | undefined, actual: number): boolean =>
  expected === undefined || expected === "any"
    ? true
    : expected === "no_stream" || expected === 0
    ? actual === 0
    : expected === "stream_exists"
    ? actual > 0
    : expected === actual

export interface AppendCommand {
  readonly stream: number
  readonly expectation: Expectation
  readonly count: number
}

export const streamIds = ["Order-1", "Order-2", "Cart-1"] as const

export const appendCommandArbitrary: FastCheck.Arbitrary<AppendCommand> = FastCheck.record({
  stream: FastCheck.integer({ min: 0, max: streamIds.length - 1 }),
  expectation: expectationArbitrary,
  count: FastCheck.integer({ min: 1, max: 3 })
})

export const appendCommandsArbitrary = FastCheck.array(appendCommandArbitrary, { minLength: 1, maxLength: 30 })
