/**
 * Versions of what is measured, read from the installed packages.
 */
import * as fs from "node:fs"

const root = new URL("../", import.meta.url)

const versionIn = (file: URL): string => {
  try {
    const pkg: unknown = JSON.parse(fs.readFileSync(file, "utf8"))
    return typeof pkg === "object" && pkg !== null && "version" in pkg ? String(pkg.version) : "unknown"
  } catch {
    return "not installed"
  }
}

/** The version of an installed package, e.g. `installedVersion("pg")`. */
export const installedVersion = (name: string): string => versionIn(new URL(`node_modules/${name}/package.json`, root))

/** This project's own version. */
export const projectVersion = (): string => versionIn(new URL("package.json", root))
