import { afterEach, describe, expect, it, vi } from 'vitest';
import bcrypt from 'bcryptjs';
import { BasicAuth, parseBasic } from '../../../src/server/auth.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
// Cost 4, the least bcrypt allows: these tests are about logic, not about bcrypt's speed.
const users = new Map([
  ['alice', bcrypt.hashSync('wonderland', 4)],
  ['bob', bcrypt.hashSync('builder', 4)],
]);

afterEach(() => vi.restoreAllMocks());

describe('basic auth', () => {
  it('reads the Authorization header strictly', () => {
    expect(parseBasic(basic('alice', 'a:b'))).toEqual({ user: 'alice', password: 'a:b' });
    expect(parseBasic(`basic ${Buffer.from('u:').toString('base64')}`)).toEqual({ user: 'u', password: '' });
    expect(parseBasic(undefined)).toBeUndefined();
    expect(parseBasic('Bearer abc')).toBeUndefined();
    expect(parseBasic(`Basic ${Buffer.from('no-colon').toString('base64')}`)).toBeUndefined();
    expect(parseBasic('Basic !!!')).toBeUndefined();
  });

  it('lets the right password in and keeps everything else out', async () => {
    const auth = new BasicAuth(users);
    expect(await auth.check(basic('alice', 'wonderland'))).toBe('ok');
    expect(await auth.check(basic('bob', 'builder'))).toBe('ok');
    expect(await auth.check(basic('alice', 'builder'))).toBe('denied');
    expect(await auth.check(basic('carol', 'wonderland'))).toBe('denied');
    expect(await auth.check(basic('Alice', 'wonderland'))).toBe('denied');
    expect(await auth.check(undefined)).toBe('denied');
    expect(await auth.check('Basic')).toBe('denied');
  });

  it('remembers successes only: a scraper costs one bcrypt, every wrong password costs one, and so does an unknown user', async () => {
    const compare = vi.spyOn(bcrypt, 'compare');
    const auth = new BasicAuth(users);
    for (let i = 0; i < 5; i++) expect(await auth.check(basic('alice', 'wonderland'))).toBe('ok');
    expect(compare).toHaveBeenCalledTimes(1);
    for (let i = 0; i < 3; i++) expect(await auth.check(basic('alice', 'nope'))).toBe('denied');
    expect(compare).toHaveBeenCalledTimes(4);
    // An unknown user is checked against a configured hash, so it takes as long as a wrong password.
    expect(await auth.check(basic('mallory', 'wonderland'))).toBe('denied');
    expect(compare).toHaveBeenCalledTimes(5);
    expect(compare.mock.calls[4][1]).toBe(users.get('alice'));
    // A remembered success is for that password only.
    expect(await auth.check(basic('alice', 'wonderland '))).toBe('denied');
    expect(compare).toHaveBeenCalledTimes(6);
  });

  it('runs one bcrypt at a time and answers busy past a bounded queue', async () => {
    let running = 0;
    let most = 0;
    vi.spyOn(bcrypt, 'compare').mockImplementation((async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
      return false;
    }) as never);
    const auth = new BasicAuth(users);
    const results = await Promise.all(Array.from({ length: 40 }, () => auth.check(basic('alice', 'guess'))));
    expect(most).toBe(1);
    expect(results.filter((r) => r === 'busy')).toHaveLength(8);
    expect(results.filter((r) => r === 'denied')).toHaveLength(32);
    // The queue drains: the right password gets in afterwards.
    vi.restoreAllMocks();
    expect(await auth.check(basic('alice', 'wonderland'))).toBe('ok');
  });

  it('treats a bcrypt failure as a wrong password', async () => {
    vi.spyOn(bcrypt, 'compare').mockRejectedValue(new Error('boom') as never);
    expect(await new BasicAuth(users).check(basic('alice', 'wonderland'))).toBe('denied');
  });
});
