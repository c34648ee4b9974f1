import { invoke } from '@pilotlight/sdk/testing';
import { describe, expect, it } from 'vitest';
import { SDK_FIXTURES } from '../support/sdk-helpers.js';

/** `@pilotlight/sdk/testing`, the in-process entry function authors test with. */
describe('invoke', () => {
  it('gives each call the function name it asks for, on the same target', async () => {
    const { default: describeContext } = (await import(`${SDK_FIXTURES}context-plain/handler.js`)) as { default: object };
    const named = async (functionName?: string) =>
      ((await (await invoke(describeContext, {}, functionName === undefined ? {} : { functionName })).json()) as { functionName: string }).functionName;
    expect(await named('first')).toBe('first');
    expect(await named('second')).toBe('second');
    expect(await named()).toBe('test');
    expect(await named('first')).toBe('first');
  });
});
