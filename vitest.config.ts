import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"

export default defineConfig({
  // Resolve `effect-event-store` (the examples import it by name) to src/, as
  // `tsx --conditions=effect-event-store/source` does for `npm start`, without a build.
  resolve: { conditions: ["effect-event-store/source"] },
  ssr: { resolve: { conditions: ["effect-event-store/source"] } },
  test: {
    include: ["test/**/*.test.ts"],
    // Test files run in worker processes, one file at a time each. A worker may
    // hold an embedded PostgreSQL (PGlite: seconds of CPU to start, then every
    // query on the worker's own thread) and up to ~25 connections to the server,
    // whose backends need CPU too: so one core is left to the server (on 2 cores,
    // one worker), and at most 4 workers keep the connections well below a
    // default max_connections of 100.
    maxWorkers: Math.max(1, Math.min(4, availableParallelism() - 1)),
    // Limits that only a broken test reaches: a test waits for what happens by
    // itself with bounded polls of 60 s (test/support/wait.ts), and shared
    // clients start in hooks with their own limit (`startupTimeout`, 180 s).
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})
