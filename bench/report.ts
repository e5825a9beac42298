/**
 * The results of a run: their JSON shape, the medians and ratios, and the
 * tables printed in the terminal and written as Markdown.
 */
import type { Config } from "./config.js"
import type { ServerInfo } from "./database.js"
import type { MachineInfo } from "./machine.js"
import { figureOf, type FigureSpec, type PlannedWorkload } from "./plan.js"
import type { ContenderId, ContenderInfo, Metrics } from "./protocol.js"
import { median, ratio as ratioOf } from "./stats.js"

export const contenderOrder: ReadonlyArray<ContenderId> = [
  "store",
  "store-batch",
  "candidate",
  "emmett",
  "floor",
  "floor-batched"
]

export interface ContenderOutcome {
  /** Every measured run, in order (warm-up runs are not kept). */
  readonly runs: Array<Metrics>
  /** Set when the contender does not run this workload. */
  readonly skipped: string | undefined
  /** Set when the contender ran a smaller version of it: why. */
  readonly scaledDown?: string | undefined
}

export interface WorkloadResult {
  readonly planned: PlannedWorkload
  readonly outcomes: Partial<Record<ContenderId, ContenderOutcome>>
}

export interface BenchResults {
  readonly startedAt: string
  readonly finishedAt: string
  /** The commit of the store that was measured. */
  readonly revision: string
  readonly command: string
  readonly config: Config
  readonly machine: MachineInfo
  readonly postgres: ServerInfo
  readonly contenders: ReadonlyArray<ContenderInfo & { readonly seedSeconds: number }>
  readonly notRun: Readonly<Record<string, string>>
  readonly workloads: ReadonlyArray<WorkloadResult>
}

const medianOf = (outcome: ContenderOutcome | undefined, spec: FigureSpec): number | null =>
  outcome === undefined || outcome.skipped !== undefined
    ? null
    : median(outcome.runs.map((run) => figureOf(run, spec.figure)))

const medianCpu = (
  outcome: ContenderOutcome | undefined,
  side: "clientCpuUsPerOp" | "serverCpuUsPerOp" | "otherCpuPercent"
) => outcome === undefined || outcome.skipped !== undefined ? null : median(outcome.runs.map((run) => run[side]))

/** The figures as JSON: every run, and the medians and ratios the tables show. */
export const summarize = (results: BenchResults) => ({
  ...results,
  workloads: results.workloads.map(({ outcomes, planned }) => ({
    id: planned.workload.id,
    label: planned.label,
    workload: planned.workload,
    figures: planned.figures.map((spec) => {
      const medians = Object.fromEntries(contenderOrder.map((id) => [id, medianOf(outcomes[id], spec)]))
      const ratio = (a: number | null | undefined, b: number | null | undefined) =>
        spec.comparable ? ratioOf(a, b) : null
      return {
        figure: spec.figure,
        label: spec.label,
        higherIsBetter: spec.higherIsBetter,
        median: medians,
        storeToFloor: ratio(medians.store, medians.floor),
        storeToBatchedFloor: ratio(medians.store, medians["floor-batched"]),
        storeBatchToFloor: ratio(medians["store-batch"], medians.floor),
        storeToEmmett: ratio(medians.store, medians.emmett),
        candidateToStore: ratio(medians.candidate, medians.store),
        emmettToFloor: ratio(medians.emmett, medians.floor)
      }
    }),
    cpuUsPerOperation: Object.fromEntries(contenderOrder.map((id) => [id, {
      client: medianCpu(outcomes[id], "clientCpuUsPerOp"),
      server: medianCpu(outcomes[id], "serverCpuUsPerOp"),
      otherProcessesPercent: medianCpu(outcomes[id], "otherCpuPercent")
    }])),
    memory: Object.fromEntries(contenderOrder.map((id) => [id, outcomes[id]?.runs.map((run) => run.memory) ?? []])),
    outcomes
  }))
})

// --- formatting ------------------------------------------------------------------

const formatNumber = (value: number | null): string => {
  if (value === null) return "—"
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString("en")
  if (Math.abs(value) >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

const formatRatio = (value: number | null): string => value === null ? "—" : `${value.toFixed(2)}×`

interface Table {
  readonly header: ReadonlyArray<string>
  readonly rows: ReadonlyArray<ReadonlyArray<string>>
  /** Columns aligned to the right (numbers). */
  readonly numeric: ReadonlyArray<boolean>
}

/** What went wrong in a run although it completed: events never delivered, or not applied exactly once. */
const anomaly = (metrics: Metrics, run: number): string | undefined => {
  // Results written before these fields existed have neither.
  const undelivered = metrics.live?.undelivered ?? 0
  if (undelivered > 0) return `run ${run + 1}: ${undelivered} of ${metrics.operations} events were never delivered`
  const applied = metrics.appliedEvents
  if (typeof applied === "number" && applied !== metrics.events) {
    return `run ${run + 1}: the read model counts ${applied.toLocaleString("en")} events applied of ` +
      `${metrics.events.toLocaleString("en")} (${applied > metrics.events ? "some twice" : "some skipped"})`
  }
  return undefined
}

const comparisonTable = (results: BenchResults): { readonly table: Table; readonly notes: ReadonlyArray<string> } => {
  const labels = Object.fromEntries(results.contenders.map((c) => [c.id, c.label]))
  const present = contenderOrder.filter((id) => labels[id] !== undefined)
  const withCandidate = present.includes("candidate")
  const withBatched = present.includes("floor-batched")
  const withStoreBatch = present.includes("store-batch")
  const notes: Array<string> = []
  const rows: Array<Array<string>> = []
  for (const { outcomes, planned } of results.workloads) {
    // A contender that skipped the workload or ran a smaller one gets a numbered note.
    const noteOf = new Map<ContenderId, number>()
    for (const id of present) {
      const outcome = outcomes[id]
      const said = [outcome?.skipped, outcome?.scaledDown, ...(outcome?.runs ?? []).map(anomaly)]
        .filter((note): note is string => note !== undefined)
      if (said.length === 0) continue
      notes.push(`${labels[id]}, ${planned.label}: ${said.join("; ")}`)
      noteOf.set(id, notes.length)
    }
    planned.figures.forEach((spec, index) => {
      const medians = present.map((id) => medianOf(outcomes[id], spec))
      const byId = Object.fromEntries(present.map((id, i) => [id, medians[i] ?? null]))
      const cells = present.map((id, i) => {
        const note = noteOf.get(id)
        const marker = note === undefined ? "" : ` [${note}]`
        return outcomes[id]?.skipped === undefined ? `${formatNumber(medians[i] ?? null)}${marker}` : `n/a${marker}`
      })
      const ratio = (a: number | null | undefined, b: number | null | undefined) =>
        spec.comparable ? ratioOf(a, b) : null
      rows.push([
        index === 0 ? planned.label : "",
        `${spec.label}${spec.higherIsBetter ? "" : " ↓"}`,
        ...cells,
        formatRatio(ratio(byId.store, byId.floor)),
        ...(withStoreBatch ? [formatRatio(ratio(byId["store-batch"], byId.floor))] : []),
        ...(withBatched ? [formatRatio(ratio(byId.store, byId["floor-batched"]))] : []),
        formatRatio(ratio(byId.store, byId.emmett)),
        ...(withCandidate ? [formatRatio(ratio(byId.candidate, byId.store))] : [])
      ])
    })
  }
  return {
    table: {
      header: [
        "workload",
        "figure",
        ...present.map((id) => labels[id] ?? id),
        "store ÷ floor",
        ...(withStoreBatch ? ["store, batch handler ÷ floor"] : []),
        ...(withBatched ? ["store ÷ batched floor"] : []),
        "store ÷ Emmett",
        ...(withCandidate ? ["candidate ÷ store"] : [])
      ],
      rows,
      numeric: [
        false,
        false,
        ...present.map(() => true),
        true,
        ...(withStoreBatch ? [true] : []),
        ...(withBatched ? [true] : []),
        true,
        ...(withCandidate ? [true] : [])
      ]
    },
    notes
  }
}

const cpuTable = (results: BenchResults): Table => {
  const labels = Object.fromEntries(results.contenders.map((c) => [c.id, c.label]))
  const present = contenderOrder.filter((id) => labels[id] !== undefined)
  const rows = results.workloads.map(({ outcomes, planned }) => [
    planned.label,
    ...present.map((id) => formatNumber(medianCpu(outcomes[id], "clientCpuUsPerOp"))),
    ...present.map((id) => formatNumber(medianCpu(outcomes[id], "serverCpuUsPerOp"))),
    formatNumber(median(present.flatMap((id) => outcomes[id]?.runs.map((run) => run.otherCpuPercent) ?? [])))
  ])
  return {
    header: [
      "workload (µs per append, event read, event delivered or event applied)",
      ...present.map((id) => `client: ${labels[id] ?? id}`),
      ...present.map((id) => `server: ${labels[id] ?? id}`),
      "others' CPU %"
    ],
    rows,
    numeric: [false, ...present.map(() => true), ...present.map(() => true), true]
  }
}

const renderPlain = (table: Table): string => {
  const widths = table.header.map((cell, column) =>
    Math.max(cell.length, ...table.rows.map((row) => (row[column] ?? "").length))
  )
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, column) =>
      table.numeric[column] ? cell.padStart(widths[column] ?? 0) : cell.padEnd(widths[column] ?? 0)
    ).join("  ").trimEnd()
  return [line(table.header), widths.map((width) => "─".repeat(width)).join("  "), ...table.rows.map(line)].join("\n")
}

const renderMarkdown = (table: Table): string => {
  const line = (cells: ReadonlyArray<string>) => `| ${cells.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`
  return [
    line(table.header),
    `|${table.numeric.map((numeric) => numeric ? " ---: " : " --- ").join("|")}|`,
    ...table.rows.map(line)
  ].join("\n")
}

const footer = (results: BenchResults, notes: ReadonlyArray<string>): ReadonlyArray<string> => [
  ...notes.map((note, index) => `[${index + 1}] ${note}`),
  ...Object.entries(results.notRun).map(([name, reason]) => `Not run: ${name}: ${reason}`),
  `Medians of ${results.config.runs} runs (memory: ${results.config.memoryRuns}` +
  `${
    results.workloads.some(({ planned }) => planned.workload.kind === "projection")
      ? `, projection: ${results.config.projectionRuns}`
      : ""
  }); ` +
  `↓ = lower is better; ratios divide this store's median by the other's.`
]

/** What the CPU table's columns mean, as one paragraph. */
const cpuLegend = "CPU time per operation, median (client = the contender's process, and its subscriber's process in " +
  "the live workloads; server = the PostgreSQL backends of its connections; others' CPU % = share of the machine " +
  "used by everything else during the runs, PostgreSQL's background writers and parallel query workers included: " +
  "high means a noisy machine)"

/** Breaks `text` into lines of at most `width` characters, at spaces. */
const wrap = (text: string, width: number): ReadonlyArray<string> =>
  text.split(" ").reduce<Array<string>>((lines, word) => {
    const last = lines[lines.length - 1]
    if (last !== undefined && last.length + 1 + word.length <= width) lines[lines.length - 1] = `${last} ${word}`
    else lines.push(word)
    return lines
  }, [])

/** The tables as printed in the terminal. */
export const renderTerminal = (results: BenchResults): string => {
  const { notes, table } = comparisonTable(results)
  return [
    renderPlain(table),
    "",
    ...footer(results, notes),
    "",
    ...wrap(cpuLegend, 110),
    renderPlain(cpuTable(results))
  ].join("\n")
}

/** The same tables in Markdown, for docs/benchmarks.md. */
export const renderMarkdownReport = (results: BenchResults): string => {
  const { notes, table } = comparisonTable(results)
  return [
    renderMarkdown(table),
    "",
    ...footer(results, notes).map((line) => `${line}  `),
    "",
    `${cpuLegend}:`,
    "",
    renderMarkdown(cpuTable(results)),
    ""
  ].join("\n")
}
