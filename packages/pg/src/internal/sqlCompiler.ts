/**
 * The PostgreSQL dialect of effect/sql's statement compiler: `$1` placeholders,
 * `"identifier"` quoting, `(values …) AS alias` record updates (as in
 * `@effect/sql-pg`) and a `json` fragment sent as a `jsonb` parameter.
 */
import * as Statement from "effect/sql/Statement"
import type { Custom, Fragment } from "effect/sql/Statement"

/** A value sent as `jsonb`. */
export type PgJson = Custom<"PgJson", unknown>

const PgJson = Statement.custom<PgJson>("PgJson")

/** A fragment holding `value` as a `jsonb` parameter. */
export const json = (value: unknown): Fragment => Statement.fragment([PgJson(value)])

const escape = Statement.defaultEscape("\"")

/** The compiler; `transform` renames identifiers (e.g. camelCase to snake_case). */
export const makeCompiler = (transform?: (_: string) => string, transformJson = true): Statement.Compiler => {
  const transformValue = transformJson && transform ? Statement.defaultTransforms(transform).value : undefined
  return Statement.makeCompiler<PgJson>({
    dialect: "pg",
    placeholder: (index) => `$${index}`,
    onIdentifier: transform
      ? (value, withoutTransform) => withoutTransform ? escape(value) : escape(transform(value))
      : escape,
    onRecordUpdate: (placeholders, valueAlias, valueColumns, values, returning) => [
      `(values ${placeholders}) AS ${valueAlias}${valueColumns}${returning ? ` RETURNING ${returning[0]}` : ""}`,
      returning ? values.flat().concat(returning[1]) : values.flat()
    ],
    onCustom: (type, placeholder, withoutTransform) => {
      const value = withoutTransform || transformValue === undefined ? type.paramA : transformValue(type.paramA)
      // postgres.js serializes a parameter the server describes as jsonb with JSON.stringify.
      return [`${placeholder(undefined)}::jsonb`, [value]]
    }
  })
}
