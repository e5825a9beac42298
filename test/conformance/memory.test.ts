/** The conformance suite on the in-memory backend, a new store per case. */
import * as Layer from "effect/Layer"
import { MemoryCheckpointStore, MemoryEventStore } from "../../src/memory/index.js"
import { memoryAging } from "../support/Harness.js"
import { checkpointConformance } from "./checkpoints.js"
import { conformance } from "./suite.js"

conformance(
  { name: "memory", makeStore: (options) => Layer.merge(MemoryEventStore.layer(options), memoryAging) },
  { propertyRuns: 100 }
)

checkpointConformance({ name: "memory", makeCheckpoints: () => MemoryCheckpointStore.layer })
