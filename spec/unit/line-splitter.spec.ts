import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LineEvent, LineSplitter } from '../../lib/protocol/line-splitter.js';
import { cutAt, everySplit } from '../helpers/splits.js';

function drain(splitter: LineSplitter): LineEvent[] {
  const events: LineEvent[] = [];
  for (let i = 0; i < 10_000; i++) {
    const e = splitter.next();
    if (e === undefined) return events;
    // The splitter hands out one event object, valid until the next call: keep a copy.
    events.push(e.kind === 'tooLong' ? LineEvent.tooLong() : LineEvent.of(Buffer.from(e.line), 0, e.length, e.bareLineFeed));
  }
  throw new Error('too many lines');
}

function feed(chunks: Buffer[], max = 16, crlfOnly = false): string[] {
  const splitter = new LineSplitter(max, crlfOnly);
  const out: string[] = [];
  for (const chunk of chunks) {
    splitter.push(chunk);
    for (const e of drain(splitter)) out.push(e.kind === 'tooLong' ? '<too long>' : `${e.line.toString()}${e.bareLineFeed ? '<LF>' : ''}`);
  }
  return out;
}

function allSplits(input: string): Buffer[][] {
  return everySplit(Buffer.from(input));
}

describe('LineSplitter', () => {
  it('splits on CRLF and reports bare LF, under every split', () => {
    for (const chunks of allSplits('EHLO a\r\nNOOP\nQUIT\r\n')) {
      expect(feed(chunks)).toEqual(['EHLO a', 'NOOP<LF>', 'QUIT']);
    }
  });

  it('keeps a bare LF inside the line when only CRLF ends lines (strictSyntax), under every split', () => {
    for (const chunks of allSplits('EHLO a\r\nNOOP\nQUIT\r\n\nRSET\r\n')) {
      expect(feed(chunks, 32, true)).toEqual(['EHLO a', 'NOOP\nQUIT', '\nRSET']);
    }
  });

  it('holds a line of bare LFs only up to the limit when only CRLF ends lines, under every split', () => {
    for (const chunks of allSplits('\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\r\nQUIT\r\n')) {
      expect(feed(chunks, 16, true)).toEqual(['<too long>', 'QUIT']);
    }
  });

  it('reports an over-long line once, then goes on, under every split', () => {
    for (const chunks of allSplits('NOOP\r\n0123456789abcdefghij\r\nQUIT\r\n')) {
      expect(feed(chunks)).toEqual(['NOOP', '<too long>', 'QUIT']);
    }
  });

  it('counts the CRLF in the limit', () => {
    expect(feed([Buffer.from('01234567890123\r\n')])).toEqual(['01234567890123']);
    expect(feed([Buffer.from('012345678901234\r\n')])).toEqual(['<too long>']);
  });

  it('holds at most the limit while a long line streams in', () => {
    const splitter = new LineSplitter(16);
    for (let i = 0; i < 1000; i++) {
      splitter.push(Buffer.alloc(100, 0x61));
      expect(splitter.next()).toBeUndefined();
      expect(splitter.buffered).toBeLessThanOrEqual(1);
    }
    splitter.push(Buffer.from('\r\nNOOP\r\n'));
    expect(drain(splitter).map((e) => e.kind)).toEqual(['tooLong', 'line']);
  });

  it('hands over the rest for DATA and takes bytes back', () => {
    const splitter = new LineSplitter(100);
    splitter.push(Buffer.from('DATA\r\nbody'));
    expect(splitter.next()).toMatchObject({ kind: 'line' });
    expect(splitter.takeAll()?.toString()).toBe('body');
    splitter.push(Buffer.from('\r\n'));
    splitter.unshift(Buffer.from('QUIT'));
    expect(drain(splitter).map((e) => (e.kind === 'line' ? e.line.toString() : e.kind))).toEqual(['QUIT']);
  });

  it('property: lines come out whole however the stream is cut', () => {
    const line = fc.stringMatching(/^[ -~]{0,12}$/);
    fc.assert(
      fc.property(fc.array(line, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 6 }), (lines, at) => {
        const wire = Buffer.from(lines.map((l) => `${l}\r\n`).join(''));
        expect(feed(cutAt(wire, at))).toEqual(lines);
      }),
      { numRuns: 500 },
    );
  });

  it('property: lines come out whole when every run is pushed before any is read', () => {
    const line = fc.stringMatching(/^[ -~\n]{0,20}$/);
    fc.assert(
      fc.property(fc.array(line, { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 8 }), fc.boolean(), (lines, at, strict) => {
        const wire = Buffer.from(lines.map((l) => `${l}\r\n`).join(''));
        const whole = feed([wire], 16, strict);
        const splitter = new LineSplitter(16, strict);
        for (const chunk of cutAt(wire, at)) splitter.push(chunk);
        expect(splitter.buffered).toBe(wire.length);
        const out = drain(splitter).map((e) =>
          e.kind === 'tooLong' ? '<too long>' : `${e.line.toString()}${e.bareLineFeed ? '<LF>' : ''}`,
        );
        expect(out).toEqual(whole);
      }),
      { numRuns: 500 },
    );
  });

  it('property: reads pushed as a loan give the same lines and bytes as runs of their own, though the loan is written over after each', () => {
    // One action after each push: read some lines (handled at once), take a BDAT-like part, or take the next run.
    const action = fc.oneof(
      fc.record({ kind: fc.constant('lines' as const), count: fc.nat({ max: 3 }) }),
      fc.record({ kind: fc.constant('take' as const), count: fc.integer({ min: 1, max: 9 }) }),
      fc.record({ kind: fc.constant('takeNext' as const), count: fc.constant(0) }),
    );
    const line = fc.stringMatching(/^[ -~\n]{0,12}$/);
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 10 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.array(action, { maxLength: 8 }),
        fc.boolean(),
        (lines, at, actions, strict) => {
          const wire = Buffer.from(lines.map((l) => `${l}\r\n`).join(''));
          const run = (lent: boolean): string[] => {
            const shared = Buffer.alloc(256);
            const splitter = new LineSplitter(16, strict);
            const out: string[] = [];
            // What was handed over is kept as it was handed over, and read only at the end.
            const kept: Buffer[] = [];
            cutAt(wire, at).forEach((chunk, i) => {
              if (lent) {
                chunk.copy(shared);
                splitter.pushLent(shared, chunk.length);
              } else {
                splitter.push(Buffer.from(chunk));
              }
              const act = actions[i % Math.max(1, actions.length)] ?? { kind: 'lines', count: 3 };
              if (act.kind === 'lines') {
                for (let n = 0; n < act.count; n++) {
                  const e = splitter.next();
                  if (e === undefined) break;
                  out.push(e.kind === 'tooLong' ? '<too long>' : e.line.toString('latin1'));
                }
              } else {
                const part = act.kind === 'take' ? splitter.take(act.count) : splitter.takeNext();
                if (part !== null) kept.push(part);
              }
              if (lent) {
                splitter.endLoan();
                // What a later read leaves after its own bytes: line feeds, or none at all.
                shared.fill(i % 2 === 0 ? 0x0a : 0x58);
              }
            });
            for (const e of drain(splitter)) out.push(e.kind === 'tooLong' ? '<too long>' : e.line.toString('latin1'));
            const all = splitter.takeAll();
            if (all !== null) kept.push(all);
            return [...out, ...kept.map((b) => `[${b.toString('latin1')}]`)];
          };
          expect(run(true)).toEqual(run(false));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('copies nothing of a loan whose lines are all read within it, and what is left of one when it ends', () => {
    const shared = Buffer.alloc(64);
    const splitter = new LineSplitter(64);
    shared.write('NOOP\r\n');
    splitter.pushLent(shared, 6);
    expect(splitter.next()?.bytes).toBe(shared);
    expect(splitter.next()).toBeUndefined();
    splitter.endLoan();
    expect(splitter.buffered).toBe(0);
    shared.write('RSET\r\nMAIL FR');
    splitter.pushLent(shared, 13);
    expect(splitter.next()?.line.toString()).toBe('RSET');
    splitter.endLoan();
    expect(splitter.holds(shared.buffer)).toBe(false);
    shared.fill(0x58);
    splitter.push(Buffer.from('OM:<a@b.test>\r\n'));
    expect(splitter.next()?.line.toString()).toBe('MAIL FROM:<a@b.test>');
  });

  it('bounds the search for a line end in a loan: the byte after the read becomes a line feed', () => {
    const shared = Buffer.alloc(64 * 1024, 0x58);
    const splitter = new LineSplitter(512);
    shared.write('MAIL FR');
    splitter.pushLent(shared, 7);
    expect(shared[7]).toBe(0x0a);
    expect(splitter.next()).toBeUndefined();
    expect(splitter.buffered).toBe(7);
    splitter.endLoan();
    shared.fill(0x0a);
    splitter.push(Buffer.from('OM:<a@b.test>\r\n'));
    expect(splitter.next()?.line.toString()).toBe('MAIL FROM:<a@b.test>');
  });

  it('keeps runs pushed while nothing reads them as they came: handed over one by one, never copied', () => {
    const splitter = new LineSplitter(100);
    const runs = [Buffer.from('one'), Buffer.from('two'), Buffer.from('three')];
    for (const run of runs) splitter.push(run);
    expect(splitter.buffered).toBe(11);
    expect(splitter.holds(runs[2]?.buffer as ArrayBufferLike)).toBe(true);
    expect(splitter.takeNext()).toBe(runs[0]);
    splitter.unshift(Buffer.from('zero'));
    expect(splitter.takeNext()?.toString()).toBe('zero');
    expect(splitter.takeNext()).toBe(runs[1]);
    expect(splitter.takeNext()).toBe(runs[2]);
    expect(splitter.takeNext()).toBeNull();
    expect(splitter.holds(runs[2]?.buffer as ArrayBufferLike)).toBe(false);
  });

  it("keeps each splitter's runs its own: splitters that held none, or dropped theirs, share nothing", () => {
    // An empty list of runs is shared until a splitter holds one; writing to it would leak runs.
    const [a, b, c] = [new LineSplitter(100), new LineSplitter(100), new LineSplitter(100)];
    for (const run of ['MAIL ', 'FROM:<a@b.test>\r\n']) a.push(Buffer.from(run));
    b.push(Buffer.from('NOOP'));
    b.unshift(Buffer.from('RSET\r\n'));
    expect(a.takeAll()?.toString()).toBe('MAIL FROM:<a@b.test>\r\n');
    c.push(Buffer.from('QUIT'));
    expect([a.buffered, b.buffered, c.buffered]).toEqual([0, 10, 4]);
    a.push(Buffer.from('DATA'));
    a.push(Buffer.from('\r\n'));
    expect(drain(a).map((e) => (e.kind === 'line' ? e.line.toString() : e.kind))).toEqual(['DATA']);
    expect(drain(b).map((e) => (e.kind === 'line' ? e.line.toString() : e.kind))).toEqual(['RSET']);
    expect(c.takeAll()?.toString()).toBe('QUIT');
    expect(b.takeAll()?.toString()).toBe('NOOP');
  });

  it('hands each line out as a range of the bytes read, in one event object, making no Buffer for it', () => {
    const splitter = new LineSplitter(100);
    const read = Buffer.from('NOOP\r\nRSET\nQUIT\r\nMA');
    splitter.push(read);
    const first = splitter.next();
    expect(first).toMatchObject({ kind: 'line', bytes: read, start: 0, end: 4, bareLineFeed: false, length: 4 });
    const second = splitter.next();
    expect(second).toBe(first);
    expect(second).toMatchObject({ bytes: read, start: 6, end: 10, bareLineFeed: true });
    expect(splitter.next()).toMatchObject({ bytes: read, start: 11, end: 15 });
    expect(splitter.next()).toBeUndefined();
    expect(splitter.buffered).toBe(2);
    expect(splitter.take(1)?.toString()).toBe('M');
    expect(splitter.takeNext()?.toString()).toBe('A');
  });

  it('hands everything over joined when all of it is dropped (after STARTTLS)', () => {
    const splitter = new LineSplitter(100);
    for (const run of ['MAIL ', 'FROM:<a@b.test>\r\n', 'RCPT']) splitter.push(Buffer.from(run));
    expect(splitter.takeAll()?.toString()).toBe('MAIL FROM:<a@b.test>\r\nRCPT');
    expect(splitter.buffered).toBe(0);
    expect(splitter.next()).toBeUndefined();
  });

  it('keeps a partial line in memory of its own once the input ran dry, and still completes it', () => {
    const splitter = new LineSplitter(64);
    const read = Buffer.alloc(8192);
    read.write('NOOP\r\nMAIL FR', 100);
    splitter.push(read.subarray(100, 113));
    expect(drain(splitter).map((e) => (e.kind === 'line' ? e.line.toString() : e.kind))).toEqual(['NOOP']);
    splitter.compact();
    read.fill(0x58);
    splitter.push(Buffer.from('OM:<a@b.test>\r\n'));
    expect(drain(splitter).map((e) => (e.kind === 'line' ? e.line.toString() : e.kind))).toEqual(['MAIL FROM:<a@b.test>']);
  });

  it('lets go of the read its last line lay in once the input ran dry: an idle connection holds no read', () => {
    const splitter = new LineSplitter(64);
    const read = Buffer.from('EHLO idle.test\r\n');
    splitter.push(read);
    const event = splitter.next();
    expect(event?.bytes.buffer).toBe(read.buffer);
    expect(splitter.next()).toBeUndefined();
    splitter.compact();
    expect(event?.bytes.length).toBe(0);
    expect(splitter.holds(read.buffer)).toBe(false);
    expect(splitter.buffered).toBe(0);
  });

  it('leaves alone what already fills most of its buffer', () => {
    const splitter = new LineSplitter(64);
    const own = Buffer.allocUnsafeSlow(7);
    own.write('MAIL FR');
    splitter.push(own);
    splitter.compact();
    own.fill(0x58);
    expect(splitter.takeAll()?.toString()).toBe('XXXXXXX');
  });
});

describe('LineSplitter.take', () => {
  it('hands over exactly the bytes asked for, across any split of the input', () => {
    const input = Buffer.from('BDAT 5\r\nHelloNOOP\r\n');
    for (let split = 0; split <= input.length; split++) {
      const lines = new LineSplitter(1000);
      lines.push(input.subarray(0, split));
      lines.push(input.subarray(split));
      expect(lines.next()).toMatchObject({ kind: 'line', line: Buffer.from('BDAT 5') });
      const parts: Buffer[] = [];
      for (let left = 5; left > 0;) {
        const part = lines.take(left);
        if (part === null) break;
        parts.push(part);
        left -= part.length;
      }
      expect(Buffer.concat(parts).toString()).toBe('Hello');
      expect(lines.next()).toMatchObject({ kind: 'line', line: Buffer.from('NOOP') });
      expect(lines.take(3)).toBeNull();
    }
  });
});
