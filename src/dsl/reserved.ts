// Names an expirable may not take, because the typed object already uses them or because
// they would change how JavaScript treats that object. Checked at define time.

/** The generic methods of the object `defineExpirables` returns. */
export const GENERIC_METHODS = [
  'fetch',
  'fetchOrThrow',
  'clear',
  'clearAll',
  'replicas',
  'stats',
  'putState',
  'updateState',
  'close',
] as const;

/** Why each non-method name is refused. */
const SPECIAL = new Map<string, string>(Object.entries({
  // `then` would make the object a thenable: `await Expirables` would call it.
  then: 'it would make the object look like a promise (await would call it)',
  catch: 'it is a promise method name',
  finally: 'it is a promise method name',
  // Object.prototype members: shadowing them breaks printing, equality helpers, JSON.
  constructor: 'it shadows Object.prototype.constructor',
  toString: 'it shadows Object.prototype.toString',
  toLocaleString: 'it shadows Object.prototype.toLocaleString',
  valueOf: 'it shadows Object.prototype.valueOf',
  hasOwnProperty: 'it shadows Object.prototype.hasOwnProperty',
  isPrototypeOf: 'it shadows Object.prototype.isPrototypeOf',
  propertyIsEnumerable: 'it shadows Object.prototype.propertyIsEnumerable',
  __defineGetter__: 'it shadows an Object.prototype member',
  __defineSetter__: 'it shadows an Object.prototype member',
  __lookupGetter__: 'it shadows an Object.prototype member',
  __lookupSetter__: 'it shadows an Object.prototype member',
  toJSON: 'JSON.stringify would call it',
}));
// Not in the literal above: `__proto__:` there would set the literal's prototype instead.
SPECIAL.set('__proto__', 'it is the prototype accessor');

/** The names no expirable may take, as a type (used to refuse them at compile time too). */
export type ReservedName = (typeof GENERIC_METHODS)[number] | 'then' | 'catch' | 'finally' | 'constructor' | 'toJSON';

/** Why `name` may not be used, or undefined when it may. `names` are every name of the definition. */
export function whyReserved(name: string, names: ReadonlySet<string>): string | undefined {
  if (name.length === 0) return 'a name must be a non-empty string';
  if ((GENERIC_METHODS as readonly string[]).includes(name)) return `it collides with the generic method ${name}()`;
  const special = SPECIAL.get(name);
  if (special) return special;
  if (name.endsWith('OrThrow')) {
    const base = name.slice(0, -'OrThrow'.length);
    if (names.has(base)) return `it collides with the generated method ${base}OrThrow() of expirable \`${base}\``;
  }
  return undefined;
}
