/**
 * Prints the tables of an earlier run from its JSON, in the terminal's form or
 * in Markdown (as docs/benchmarks.md shows them):
 *
 *   npx tsx bench/render.ts bench/results/latest.json [--markdown]
 */
import * as fs from "node:fs"
import { parseArgs } from "node:util"
import { configs } from "./config.js"
import { plan } from "./plan.js"
import type { ContenderId, Workload } from "./protocol.js"
import { type BenchResults, type ContenderOutcome, renderMarkdownReport, renderTerminal } from "./report.js"

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { markdown: { type: "boolean", default: false } }
})
const [file] = positionals
if (file === undefined) throw new Error("usage: render.ts <results.json> [--markdown]")

/** The JSON as `summarize` wrote it; only what the tables need is read back. */
type Summary = Omit<BenchResults, "workloads"> & {
  readonly workloads: ReadonlyArray<{
    readonly id: string
    readonly label: string
    readonly workload: Workload
    readonly outcomes: Partial<Record<ContenderId, ContenderOutcome>>
  }>
}

const summary = JSON.parse(fs.readFileSync(file, "utf8")) as Summary
// Settings added since an older run was written take today's values.
const config = { ...configs[summary.config.mode], ...summary.config }
// The figures come from the plan; the workload and its label as they ran (the live pace is set at run time).
const planned = new Map(plan(config).map((entry) => [entry.workload.id, entry]))
const results: BenchResults = {
  ...summary,
  config,
  workloads: summary.workloads.flatMap(({ id, label, outcomes, workload }) => {
    const entry = planned.get(id)
    return entry === undefined ? [] : [{ planned: { ...entry, workload, label }, outcomes }]
  })
}
console.log(values.markdown ? renderMarkdownReport(results) : renderTerminal(results))
