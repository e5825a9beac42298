/** The conformance suite on the in-memory backend, a new store per case. */
import { MemoryEventStore } from "../../src/memory/index.js"
import { conformance } from "./suite.js"

conformance({ name: "memory", makeStore: (options) => MemoryEventStore.layer(options) }, { propertyRuns: 100 })
