/**
 * Values that are there now or later. User hooks may be synchronous or async; a synchronous one
 * is run without a promise, so the common handler pays no microtask per command.
 */

/** A value now, or later. */
export type Maybe<T> = T | Promise<T>;

/** Applies `f` to a value now, or once it is there. */
export function andThen<T, U>(value: Maybe<T>, f: (v: T) => U): Maybe<U> {
  return value instanceof Promise ? value.then(f) : f(value);
}

/** Applies `f`, which may itself answer later, to a value now or once it is there. */
export function chain<T, U>(value: Maybe<T>, f: (v: T) => Maybe<U>): Maybe<U> {
  return value instanceof Promise ? value.then(f) : f(value);
}
