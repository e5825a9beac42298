/**
 * Writes src/internal/migrations.ts from the plain SQL files in migrations/:
 * the files stay the source of truth (and can be run by hand), while the
 * library reads its migrations from a module, so that an application bundled
 * with esbuild or similar needs no files beside it.
 *
 *   tsx scripts/embed-migrations.ts          write the module
 *   tsx scripts/embed-migrations.ts --check  fail if it is out of date
 */
import * as fs from "node:fs"

const directory = new URL("../migrations/", import.meta.url)
const target = new URL("../src/internal/migrations.ts", import.meta.url)
const fileName = /^(\d{4})_(\w+)\.sql$/

export const render = (): string => {
  const entries = fs.readdirSync(directory)
    .flatMap((file) => {
      const match = fileName.exec(file)
      return match === null ? [] : [{ id: Number(match[1]), name: match[2] ?? "", file }]
    })
    .sort((a, b) => a.id - b.id)
  // One element a line, as the formatter (`npm run lint`) lays out an array too long for one.
  const rows = entries.map(({ file, id, name }) =>
    [
      "  [",
      `    ${id},`,
      `    ${JSON.stringify(name)},`,
      `    ${JSON.stringify(fs.readFileSync(new URL(file, directory), "utf8"))}`,
      "  ]"
    ].join("\n")
  )
  return [
    "/**",
    " * The store's migrations, generated from migrations/*.sql by",
    " * scripts/embed-migrations.ts (`npm run migrations:embed`): edit the SQL files, not this.",
    " */",
    "",
    "/** Each migration: its number, its name and the SQL of its file. */",
    "export const migrations: ReadonlyArray<readonly [id: number, name: string, sql: string]> = [",
    rows.join(",\n"),
    "]",
    ""
  ].join("\n")
}

const current = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : ""
const wanted = render()
if (process.argv.includes("--check")) {
  if (current !== wanted) {
    console.error("src/internal/migrations.ts is out of date: run `npm run migrations:embed`")
    process.exit(1)
  }
} else if (current !== wanted) {
  fs.writeFileSync(target, wanted)
  console.log("wrote src/internal/migrations.ts")
}
