/**
 * Statement parameters postgres.js cannot send, refused before postgres.js
 * sees them.
 *
 * postgres.js serializes parameters when it writes a statement to its
 * connection. If that throws (an `undefined`, a Symbol, a circular object,
 * more than 65,534 parameters) while another statement is already running on
 * the connection, it fails the *running* statement with the usage error and
 * leaves the bad one queued without an answer (seen: a pipelined write hung
 * until its deadline and was reported as outcome-unknown). Checking first
 * makes a usage error fail only its own statement, before anything is sent.
 *
 * @internal
 */

/** postgres.js refuses statements with this many parameters or more. */
const MAX_PARAMETERS = 65_534

/** A usage error, shaped like postgres.js's own (`code`, `message`), so that it is classified as one. */
const usage = (code: string, message: string) => Object.assign(new Error(message), { code })

const isPlainObject = (value: object): boolean => {
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** Throws for a value postgres.js could not serialize (`where` names it in the message). */
const inspect = (value: unknown, where: string, path: Set<object>, inArray: boolean): void => {
  switch (typeof value) {
    case "undefined":
      // JSON drops an undefined property; a parameter or an array element cannot be undefined.
      if (path.size === 0 || inArray) throw usage("UNDEFINED_VALUE", `Undefined values are not allowed (${where})`)
      return
    case "symbol":
    case "function":
      if (path.size === 0 || inArray) throw usage("UNDEFINED_VALUE", `A ${typeof value} cannot be sent (${where})`)
      return
    case "object": {
      if (value === null) return
      const array = Array.isArray(value)
      if (!array && !isPlainObject(value)) return
      if (path.has(value)) throw new TypeError(`Converting circular structure to JSON (${where})`)
      path.add(value)
      for (const key in value) inspect((value as Record<string, unknown>)[key], where, path, array)
      path.delete(value)
    }
  }
}

/**
 * Throws a postgres.js-shaped usage error for parameters postgres.js could not
 * serialize; returns nothing otherwise. Values postgres.js handles itself
 * (helpers, fragments, Buffers, Dates, typed values) pass untouched.
 */
export const check = (values: ReadonlyArray<unknown> | undefined): void => {
  if (values === undefined) return
  if (values.length >= MAX_PARAMETERS) {
    throw usage("MAX_PARAMETERS_EXCEEDED", `Max number of parameters (${MAX_PARAMETERS - 1}) exceeded: ${values.length}`)
  }
  for (let i = 0; i < values.length; i++) {
    const value = values[i]
    // Plain values (the common case) cost one typeof.
    if (typeof value === "object" || typeof value === "undefined" || typeof value === "symbol" || typeof value === "function") {
      inspect(value, `parameter ${i + 1}`, new Set(), false)
    }
  }
}
