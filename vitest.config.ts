import { defineConfig } from "vitest/config"

export default defineConfig({
  // Resolve `effect-event-store` (the examples import it by name) to src/, as
  // `tsx --conditions=effect-event-store/source` does for `npm start`, without a build.
  resolve: { conditions: ["effect-event-store/source"] },
  ssr: { resolve: { conditions: ["effect-event-store/source"] } },
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000
  }
})
