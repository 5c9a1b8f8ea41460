// Key and channel names of one namespace in Redis. Every name starts with the namespace's
// hash tag `{es:<namespace>}`, so on Redis Cluster every key and the channel of a namespace
// live in one slot: a script may touch any of them, and SPUBLISH from a script is allowed.
// Names and canonical keys are length-prefixed so that no two (name, key) pairs share a key.

export class RedisKeys {
  /** `{es:<namespace>}`: the hash tag of every key of the namespace. */
  readonly tag: string;
  /** Last version handed out (see ./scripts.ts). */
  readonly seq: string;
  /** Clear floors: name (or `*`) -> version. */
  readonly floors: string;
  /** The channel every write of the namespace is published on. */
  readonly channel: string;

  constructor(readonly namespace: string) {
    this.tag = `{es:${namespace}}`;
    this.seq = `${this.tag}:seq`;
    this.floors = `${this.tag}:floors`;
    this.channel = `${this.tag}:ch`;
  }

  #id(name: string, canon: string): string {
    return `${name.length}:${name}:${canon}`;
  }

  /** The hash of one entry (value, state, version). */
  entry(name: string, canon: string): string {
    return `${this.tag}:e:${this.#id(name, canon)}`;
  }

  /** The fetch lease of one entry. */
  lease(name: string, canon: string): string {
    return `${this.tag}:l:${this.#id(name, canon)}`;
  }

  /** The processes holding a replica of one entry (sorted set, score = lease end). */
  holders(name: string, canon: string): string {
    return `${this.tag}:h:${this.#id(name, canon)}`;
  }
}
