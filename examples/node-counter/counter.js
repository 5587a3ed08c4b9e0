// A stateful counter written for Node.js, run by cncf's `command` form.
'use strict';

class Counter {
  constructor() { this.value = 0; }
  increment(by = 1) { this.value += by; return this.value; }
  get() { return this.value; }
  greet(name) { console.log(`hello from node, ${name}`); return `hello, ${name}`; }
  fail() { throw new RangeError('node says no'); }
  async slow(ms, ctx) {
    const until = Date.now() + ms;
    while (Date.now() < until) {
      if (ctx && ctx.cancelled()) throw new Error('cancelled');
      await new Promise((r) => setTimeout(r, 5));
    }
    return ms;
  }
  crash() { process.exit(7); }
}

module.exports = { Counter };
